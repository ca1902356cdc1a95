/**
 * Runs CNCF Distribution 2.8 (Debian's `docker-registry`) as a reference registry for e2e tests.
 * Running the same scenario against the reference first proves the test itself is right, so a
 * failure against Meridian points at Meridian.
 */
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServiceProcess } from './service-process.js';

export interface DistributionOptions {
  /** A directory this registry owns: its config file and filesystem storage go under it. */
  workDir: string;
  /** Defaults to /usr/bin/docker-registry. */
  binary?: string;
  /** Distribution's log level; `error` keeps test output quiet. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /**
   * The in-memory blob-descriptor cache of Debian's and upstream's example config: the
   * benchmark runs Distribution as it is shipped.
   */
  blobDescriptorCache?: boolean;
  /** A fixed http.secret; without one Distribution warns and makes a random one (fine for one instance). */
  httpSecret?: string;
}

export interface DistributionRegistry {
  /** `127.0.0.1:PORT`, the form a `docker://` reference takes. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  pid: number;
  /** SIGTERM, then wait for exit. */
  stop(): Promise<void>;
  /** Undefined while it runs; once it has exited, how, with the tail of its output. */
  exitReport(): string | undefined;
}

/** Asks the kernel for a free loopback port. Distribution cannot report a port it picked itself. */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

export async function startDistributionRegistry(opts: DistributionOptions): Promise<DistributionRegistry> {
  const port = await findFreePort();
  const storageDir = path.join(opts.workDir, 'storage');
  await mkdir(storageDir, { recursive: true });
  const configPath = path.join(opts.workDir, 'config.yml');
  // delete.enabled: distribution-spec "Deleting manifests" is optional, and Distribution refuses
  // DELETE (405 UNSUPPORTED) unless asked. JSON strings are valid YAML scalars, hence the quoting.
  await writeFile(
    configPath,
    [
      'version: 0.1',
      'log:',
      `  level: ${opts.logLevel ?? 'error'}`,
      '  accesslog:',
      '    disabled: true',
      'storage:',
      ...(opts.blobDescriptorCache ? ['  cache:', '    blobdescriptor: inmemory'] : []),
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(storageDir)}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(opts.httpSecret ? [`  secret: ${JSON.stringify(opts.httpSecret)}`] : []),
      '',
    ].join('\n'),
  );

  const service = startServiceProcess('docker-registry', opts.binary ?? '/usr/bin/docker-registry', ['serve', configPath]);
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const stop = () => service.stop();

  // distribution-spec "Determining support": GET /v2/ answers 200 once the registry serves.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const failure = service.failure();
    if (failure) throw new Error(failure);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer GET /v2/ within 15s:\n${service.output()}`);
    }
    await sleep(50);
  }

  return { host, url, pid: service.child.pid!, stop, exitReport: () => service.failure() };
}
