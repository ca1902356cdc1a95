import { pino } from 'pino';
import { loadConfig } from './config.js';
import { createApp } from './app.js';

/** Entry point: config from the environment, start, and a clean stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  const gateway = await createApp(config, logger);
  const url = await gateway.listen();
  logger.info({ url, region: config.region, dataDir: config.dataDir }, 'gateway listening');
  // A banner for people, whatever the log level: where to push.
  process.stdout.write(
    `Meridian listening on ${url}\n` +
      `  push: skopeo copy --dest-tls-verify=false oci:./layout:tag docker://${url.replace(/^http:\/\//, '')}/REPO:TAG\n`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    gateway.close().then(
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

main().catch((err) => {
  process.stderr.write(`meridian gateway failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
