import cluster from 'node:cluster';
import { pino, type Logger } from 'pino';
import { loadConfig, type GatewayConfig } from './config.js';
import { createApp } from './app.js';
import { prepareRegion } from './region-setup.js';
import { superviseWorkers, type WorkerListening } from './supervisor.js';

/**
 * Entry point: config from the environment, then either one gateway process
 * (MERIDIAN_WORKERS=1) or a supervisor running that many on one port. Stops cleanly on
 * SIGTERM/SIGINT, finishing in-flight requests.
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  if (cluster.isWorker) {
    await runGateway(config, logger);
    return;
  }
  if (config.workers === 1) {
    const url = await runGateway(config, logger);
    return printBanner(url);
  }
  // Prepare once (database, schema, upload secret) so the workers find the region ready.
  await prepareRegion(config, logger);
  const supervision = superviseWorkers(config.workers, logger);
  supervision.stopped.then((code) => process.exit(code));
  const url = await supervision.ready;
  logger.info({ url, region: config.region, workers: config.workers }, 'gateway listening');
  printBanner(url);
}

async function runGateway(config: GatewayConfig, logger: Logger): Promise<string> {
  const gateway = await createApp(config, logger);
  const url = await gateway.listen();
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
  // A worker whose supervisor is gone (killed, crashed) must not live on as an orphan.
  if (cluster.isWorker) process.once('disconnect', () => stop('SIGTERM'));
  if (cluster.isWorker) process.send?.({ type: 'listening', url } satisfies WorkerListening);
  else logger.info({ url, region: config.region, dataDir: config.dataDir }, 'gateway listening');
  return url;
}

/** For people, whatever the log level: where to push. */
function printBanner(url: string): void {
  process.stdout.write(
    `Meridian listening on ${url}\n` +
      `  push: skopeo copy --dest-tls-verify=false oci:./layout:tag docker://${url.replace(/^http:\/\//, '')}/REPO:TAG\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`meridian gateway failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
