import path from 'node:path';
import { pino } from 'pino';
import { startTracing } from '@meridian/telemetry';
import { loadConfig, StartupError, type ControlPlaneConfig } from './config.js';

/**
 * Entry point: config from the environment, the control plane, and a clean stop on SIGTERM or
 * SIGINT (in-flight requests finish; Redis and Postgres connections close).
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  if (!config.auth) logger.warn({ auth: 'off' }, AUTH_OFF_WARNING);
  // Tracing starts before the modules it instruments are loaded (pg, express, ioredis).
  const tracing = config.otlpEndpoint ? await startTracing({ service: 'control-plane', endpoint: config.otlpEndpoint }) : undefined;
  const { createApp } = await import('./app.js');
  const controlPlane = await createApp(config, logger);
  const url = await controlPlane.listen();
  logger.info({ url }, 'control plane listening');
  printBanner(url, config);
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

const AUTH_OFF_WARNING = 'MERIDIAN_AUTH=off: NO AUTHENTICATION. Anyone who can reach this port can register and remove regions, read the audit log and manage the cluster\'s identities. For a throwaway cluster only';

/** For people, whatever the log level: where the admin API is, and as whom to use it. */
function printBanner(url: string, config: ControlPlaneConfig): void {
  const access = !config.auth
    ? `  WARNING: ${AUTH_OFF_WARNING}\n`
    : config.auth.adminPassword !== undefined
      ? '  sign in as admin with MERIDIAN_ADMIN_PASSWORD\n'
      : `  sign in as admin with the password in ${path.join(config.auth.dataDir, 'admin-password')}\n`;
  process.stdout.write(`Meridian control plane listening on ${url}\n${access}`);
}

main().catch((err) => {
  const text = err instanceof StartupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`meridian control plane failed to start: ${text}\n`);
  process.exit(1);
});
