import { pino } from 'pino';
import { createApp } from './app.js';
import { loadConfig, StartupError, type RouterConfig } from './config.js';

/**
 * Entry point: config from the environment, the router, and a clean stop on SIGTERM or SIGINT
 * (in-flight requests finish, up to MERIDIAN_SHUTDOWN_GRACE_SECONDS).
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  const router = await createApp(config, logger);
  const url = await router.listen().catch((err: NodeJS.ErrnoException) => {
    throw listenError(err, config) ?? err;
  });
  logger.info({ url, controlPlane: config.controlPlaneUrl, locationRanges: config.locations.length }, 'router listening');
  process.stdout.write(`Meridian router listening on ${url}\n`);
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
  process.stderr.write(`meridian router failed to start: ${text}\n`);
  process.exit(1);
});
