import cluster from 'node:cluster';
import http from 'node:http';
import { FilesystemDriver, PathNotFoundError } from '@meridian/blobstore';

/**
 * The bench's "Node static" target: a bare node:http server sending files with Meridian's own
 * pull copy (`FilesystemDriver.copyTo`), in as many processes as Meridian runs, with no express,
 * no routing, no metadata lookup. Beside nginx it shows what a Node server can do without
 * sendfile; beside Meridian, what the registry around the copy costs.
 *
 * Usage: tsx node-static-server.ts ROOT PORT WORKERS. Prints "listening" once every worker is.
 */
const [root, portText, workersText] = process.argv.slice(2);
if (!root || !portText || !workersText) throw new Error('usage: node-static-server.ts ROOT PORT WORKERS');
const port = Number(portText);
const workers = Number(workersText);

if (cluster.isPrimary && workers > 1) {
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().once('listening', () => {
      if (++listening === workers) console.log('listening');
    });
  }
  cluster.on('exit', () => process.exit(1));
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const driver = new FilesystemDriver(root);
  const server = http.createServer(async (req, res) => {
    let relative: string;
    try {
      relative = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    try {
      const { size, isDirectory } = await driver.stat(relative);
      if (isDirectory || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      if (req.method === 'GET' && size > 0) await driver.copyTo(relative, { start: 0, end: size - 1 }, res);
      res.end();
    } catch (err) {
      if (res.headersSent) res.destroy();
      else res.writeHead(err instanceof PathNotFoundError ? 404 : 500).end();
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    if (workers <= 1) console.log('listening');
  });
  process.on('SIGTERM', () => process.exit(0));
}
