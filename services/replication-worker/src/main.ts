import { pino } from 'pino';
import { startTracing } from '@meridian/telemetry';
import { loadConfig } from './config.js';

/**
 * Entry point: config from the environment, then the worker. SIGTERM or SIGINT stops taking
 * jobs and lets running ones finish for MERIDIAN_SHUTDOWN_GRACE_SECONDS; what is still running
 * then goes back to the queue, and its copy resumes where it stopped.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`meridian replication worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const logger = pino({ level: config.logLevel });
  // Tracing starts before the modules it instruments are loaded (ioredis, gRPC).
  const tracing = config.otlpEndpoint ? await startTracing({ service: 'replication-worker', endpoint: config.otlpEndpoint }) : undefined;
  const { createApp } = await import('./app.js');
  const worker = createApp(config, logger);
  // Until Redis answers there is nothing to take; say what is awaited rather than sit silent.
  logger.info({ redis: withoutPassword(config.redisUrl) }, 'connecting to Redis');
  await worker.start();
  logger.info(
    { controlPlane: config.controlPlaneUrl, redis: withoutPassword(config.redisUrl), metrics: `${worker.url}/metrics`, concurrency: config.workerConcurrency, perRegion: config.regionConcurrency },
    'replication worker taking jobs',
  );
  // For people and launchers (pnpm cluster), whatever the log level, as the other services do.
  process.stdout.write(`Meridian replication worker taking jobs (control plane ${config.controlPlaneUrl})\n`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceSeconds: config.shutdownGraceMs / 1000 }, 'stopping: no new jobs, finishing running ones');
    worker.stop().then(
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

function withoutPassword(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

main().catch((err) => {
  process.stderr.write(`meridian replication worker failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
