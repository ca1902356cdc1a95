import cluster from 'node:cluster';
import { pino, type Logger } from 'pino';
import { checkListenAddress, reportListening, reportStartFailure, superviseWorkers } from '@meridian/supervisor';
import { serveClusterMetrics } from '@meridian/telemetry';
import { createApp } from './app.js';
import { loadConfig, StartupError, type RouterConfig } from './config.js';

/**
 * Entry point: config from the environment, then either one router process (MERIDIAN_WORKERS=1)
 * or a supervisor running that many on one port. Stops cleanly on SIGTERM or SIGINT (in-flight
 * requests finish, up to MERIDIAN_SHUTDOWN_GRACE_SECONDS).
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  if (cluster.isWorker || config.workers === 1) {
    const url = await runRouter(config, logger);
    if (cluster.isWorker) return;
    logger.info({ url, controlPlane: config.controlPlaneUrl, locationRanges: config.locations.length }, 'router listening');
    process.stdout.write(`Meridian router listening on ${url}\n`);
    return;
  }
  // Tried once here, so that a port in use is reported once rather than by every worker.
  await checkListenAddress(config.host, config.port).catch((err: NodeJS.ErrnoException) => {
    throw listenError(err, config) ?? err;
  });
  // A scrape of /metrics reaches one worker, which asks here for the sum over all of them.
  serveClusterMetrics();
  const supervision = superviseWorkers({ workers: config.workers, logger, service: 'router', startFailure: (report) => new StartupError(report) });
  supervision.stopped.then((code) => process.exit(code));
  const url = await supervision.ready;
  logger.info({ url, controlPlane: config.controlPlaneUrl, locationRanges: config.locations.length, workers: config.workers }, 'router listening');
  process.stdout.write(`Meridian router listening on ${url}\n`);
}

/** One router serving the port (alone, or as one of the supervisor's workers), until a stop signal. */
async function runRouter(config: RouterConfig, logger: Logger): Promise<string> {
  const router = await createApp(config, logger);
  const url = await router.listen().catch((err: NodeJS.ErrnoException) => {
    throw listenError(err, config) ?? err;
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    router.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  reportListening(url, () => stop('SIGTERM'));
  return url;
}

/** An address in use or not of this machine, as one line naming the variable. */
function listenError(err: NodeJS.ErrnoException, config: RouterConfig): StartupError | undefined {
  const where = `${config.host}:${config.port}`;
  if (err.code === 'EADDRINUSE') return new StartupError(`PORT: ${where} is already in use (EADDRINUSE); stop what listens there, or set PORT to a free port (PORT=0 picks one)`);
  if (err.code === 'EADDRNOTAVAIL') return new StartupError(`HOST: ${config.host} is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses`);
  if (err.code === 'EACCES') return new StartupError(`PORT: ${where} needs privileges this process lacks (EACCES); set PORT to 1024 or above`);
  return undefined;
}

main().catch((err) => {
  const text = err instanceof StartupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  // A worker hands its report to the supervisor, which prints the first one.
  if (reportStartFailure(text)) return;
  process.stderr.write(`meridian router failed to start: ${text}\n`);
  process.exit(1);
});
