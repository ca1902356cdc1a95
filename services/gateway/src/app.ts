import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import http from 'node:http';
import express from 'express';
import { pino, type Logger } from 'pino';
import { BlobStore, STORAGE_DRIVERS } from '@meridian/blobstore';
import { ChangeListener, Metadata, createPool, ensureDatabase, migrate } from '@meridian/metadata';
import type { GatewayConfig } from './config.js';
import { createRegistry, type Registry } from './registry/registry.js';
import { LookupCache } from './registry/lookup-cache.js';
import { UploadStateSigner } from './registry/upload-state.js';
import { createOciRouter } from './http/oci-router.js';
import { createErrorHandler } from './http/error-handler.js';
import { expressBuiltMessages } from './http/express-messages.js';

/** How long a shutdown waits for the handlers of cut connections to finish cleaning up. */
const HANDLER_CLEANUP_MS = 5000;

export interface Gateway {
  server: http.Server;
  registry: Registry;
  logger: Logger;
  /** Listens on config.host:config.port; resolves with the URL. */
  listen(): Promise<string>;
  /** Stops taking requests, lets in-flight ones finish (up to the grace period), then closes stores. */
  close(): Promise<void>;
}

/**
 * The composition root (STYLE.md §5): database and schema, pool, stores, blob driver, caches,
 * domain services, HTTP app, in that order. Everything a part needs is passed to it here.
 */
export async function createApp(config: GatewayConfig, logger: Logger = pino({ level: config.logLevel })): Promise<Gateway> {
  const uploadSecret = await prepareRegion(config, logger);
  const pool = createPool({ databaseUrl: config.databaseUrl, max: config.databasePoolSize });
  pool.on('error', (err) => logger.error({ err }, 'idle database connection failed'));
  const metadata = new Metadata(pool);

  const driver = STORAGE_DRIVERS[config.storageDriver]({
    rootDirectory: path.join(config.dataDir, 'store'),
    directWrites: config.directWrites,
    onDirectWritesOff: (reason) => logger.warn({ reason }, 'blob writes now go through the page cache'),
  });
  const blobStore = new BlobStore(driver);
  logger.info({ storageDriver: driver.name, blobWrites: await driver.describeWrites?.() }, 'blob store ready');

  const cache = new LookupCache({ maxEntries: config.cacheEntries });
  const changeListener = new ChangeListener(config.databaseUrl, {
    onChange: (change) => cache.invalidate(change),
    onReset: () => cache.suspend(),
    onListening: () => cache.resume(),
    onError: (err) => logger.warn({ err }, 'metadata change listener: connection lost or notification ignored'),
  });
  await changeListener.start();

  const uploadSigner = new UploadStateSigner(uploadSecret);
  const registry = createRegistry({ metadata, blobStore, cache, uploadSigner });

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  const inFlight = new Set<Promise<void>>();
  app.use(createOciRouter({ registry, inFlight }));
  app.use(createErrorHandler(logger));

  const server = http.createServer(expressBuiltMessages(app), app);
  // Longer than typical client and load-balancer idle timeouts, so pooled connections are reused.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 76_000;
  // Blob bodies may take long; the per-request timeout must not cut a slow 5 GiB upload.
  server.requestTimeout = 0;
  // What does cut a stalled client: no bytes either way for this long. With no 'timeout'
  // listener on the server, Node destroys the socket, and the request's cleanup runs.
  server.timeout = config.idleTimeoutMs;

  const purgeTimer = setInterval(() => {
    registry.uploads.purgeStale(config.uploadMaxIdleMs).catch((err) => logger.warn({ err }, 'purging stale uploads failed'));
  }, Math.min(config.uploadMaxIdleMs, 3600_000));
  purgeTimer.unref();

  return {
    server,
    registry,
    logger,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          const address = server.address();
          const port = typeof address === 'object' && address ? address.port : config.port;
          resolve(`http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);
        });
      }),
    async close() {
      clearInterval(purgeTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive connections would hold close() open; in-flight requests are left to
      // finish, and their connections are closed as soon as they fall idle.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const grace = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(grace);
      // Connections cut at the end of the grace period leave handlers undoing their work
      // (cutting back a chunk, releasing a session lock); they need the database and the disk a
      // moment longer. Bounded, in case one is stuck on something that never answers.
      await settledWithin([...inFlight], HANDLER_CLEANUP_MS);
      await changeListener.stop();
      await pool.end();
    },
  };
}

/**
 * What every gateway of the region needs before it serves: the database and its schema, the
 * data directory, the shared upload secret. Idempotent and safe to run concurrently (migrations
 * take an advisory lock; the secret is created with an atomic link), so a supervisor runs it
 * once before forking and each gateway again on start. Returns the upload secret.
 */
export async function prepareRegion(config: GatewayConfig, logger: Logger): Promise<string> {
  await ensureDatabase(config.databaseUrl);
  await migrate(config.databaseUrl, (message) => logger.debug(message));
  await mkdir(config.dataDir, { recursive: true });
  return config.uploadSecret ?? (await regionUploadSecret(config.dataDir));
}

/**
 * The upload-state secret shared by every gateway of a region that shares the data directory:
 * created once, never random per process (a random one breaks uploads behind a load balancer).
 * It is written whole to a temporary file and then hard-linked into place, which fails if the
 * name exists: concurrent starts agree on one secret, and nobody ever reads a half-written one.
 */
async function regionUploadSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'upload-secret');
  const existing = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing === undefined) {
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(temporary, randomBytes(32).toString('base64url'), { mode: 0o600 });
    await link(temporary, file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await unlink(temporary);
  }
  const secret = (await readFile(file, 'utf8')).trim();
  if (secret.length < 32) {
    // An empty or short key would make upload URLs forgeable: refuse to start instead.
    throw new Error(`${file} holds no usable upload secret (fewer than 32 characters); remove it or set MERIDIAN_UPLOAD_SECRET`);
  }
  return secret;
}

/** Resolves once every promise has settled, or after `ms`, whichever comes first. */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(promises), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
