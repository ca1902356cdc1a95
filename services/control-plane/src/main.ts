import { pino } from 'pino';
import { startTracing } from '@meridian/telemetry';
import { loadConfig, StartupError } from './config.js';

/**
 * Entry point: config from the environment, the control plane, and a clean stop on SIGTERM or
 * SIGINT (in-flight requests finish; Redis and Postgres connections close).
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  // Tracing starts before the modules it instruments are loaded (pg, express, ioredis).
  const tracing = config.otlpEndpoint ? await startTracing({ service: 'control-plane', endpoint: config.otlpEndpoint }) : undefined;
  const { createApp } = await import('./app.js');
  const controlPlane = await createApp(config, logger);
  const url = await controlPlane.listen();
  logger.info({ url }, 'control plane listening');
  process.stdout.write(`Meridian control plane listening on ${url}\n`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    controlPlane.close().then(
      async () => {
        await tracing?.shutdown().catch((err) => logger.warn({ err }, 'exporting the last spans failed'));
        process.exit(0);
      },
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
  const text = err instanceof StartupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`meridian control plane failed to start: ${text}\n`);
  process.exit(1);
});
