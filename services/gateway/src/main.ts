import cluster from 'node:cluster';
import net from 'node:net';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { loadConfig, wantsStackTraces, type GatewayConfig } from './config.js';
import { describeStartFailure, listenStartupError, passwordsIn } from './startup-errors.js';
import { superviseWorkers, type WorkerListening, type WorkerStartFailed } from './supervisor.js';
import { serveClusterMetrics, startTracing } from '@meridian/telemetry';

/**
 * Entry point: config from the environment, then either one gateway process
 * (MERIDIAN_WORKERS=1) or a supervisor running that many on one port. Stops cleanly on
 * SIGTERM/SIGINT, finishing in-flight requests.
 */
async function main(env: NodeJS.ProcessEnv): Promise<void> {
  let config: GatewayConfig | undefined;
  try {
    config = loadConfig(env);
    await start(config);
  } catch (err) {
    const secrets = config ? [...passwordsIn(config.databaseUrl), config.uploadSecret ?? '', config.auth?.adminPassword ?? '', config.clusterSecret ?? ''] : [];
    reportStartFailure(describeStartFailure(err, { stacks: wantsStackTraces(env), secrets }));
  }
}

async function start(config: GatewayConfig): Promise<void> {
  const logger = pino({ level: config.logLevel });
  if (cluster.isWorker) {
    await runGateway(config, logger);
    return;
  }
  // Once per start, from the supervisor or the one process, not from every worker.
  if (!config.auth) logger.warn({ auth: 'off' }, AUTH_OFF_WARNING);
  if (config.workers === 1) {
    const url = await runGateway(config, logger);
    return printBanner(url, config);
  }
  // Prepare once (data directory, database, schema, upload secret) and try the address, so the
  // workers find the region ready, and a mistake is reported once rather than by every worker.
  const { prepareRegion } = await import('./region-setup.js');
  await prepareRegion(config, logger);
  await tryListening(config);
  // A scrape of /metrics reaches one worker, which asks here for the sum over all of them.
  serveClusterMetrics();
  const supervision = superviseWorkers(config.workers, logger);
  supervision.stopped.then((code) => process.exit(code));
  const url = await supervision.ready;
  logger.info({ url, region: config.region, workers: config.workers }, 'gateway listening');
  printBanner(url, config);
}

async function runGateway(config: GatewayConfig, logger: Logger): Promise<string> {
  // Tracing starts before the modules it instruments are loaded (pg, express, ...).
  const tracing = config.otlpEndpoint ? await startTracing({ service: 'gateway', region: config.region, endpoint: config.otlpEndpoint, readSampleRatio: config.traceReadRatio, express: false }) : undefined;
  // Loaded only by a process that serves: the supervisor never does, and a mistake found before
  // this point is reported without waiting for the HTTP app and the domain layer to load.
  const { createApp } = await import('./app.js');
  const gateway = await createApp(config, logger);
  const url = await gateway.listen().catch((err) => {
    throw listenStartupError(err, config.host, config.port) ?? err;
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    gateway.close().then(
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
  // A worker whose supervisor is gone (killed, crashed) must not live on as an orphan.
  if (cluster.isWorker) process.once('disconnect', () => stop('SIGTERM'));
  if (cluster.isWorker) process.send?.({ type: 'listening', url } satisfies WorkerListening);
  else logger.info({ url, region: config.region, dataDir: config.dataDir }, 'gateway listening');
  return url;
}

const AUTH_OFF_WARNING = 'MERIDIAN_AUTH=off: NO AUTHENTICATION. Anyone who can reach this port can push, overwrite and delete anything. For a throwaway local registry only';

/** For people, whatever the log level: where to push, and as whom. */
function printBanner(url: string, config: GatewayConfig): void {
  const creds = config.auth ? ' --dest-creds admin:PASSWORD' : '';
  const password = config.auth?.adminPassword !== undefined
    ? '  sign in as admin with MERIDIAN_ADMIN_PASSWORD\n'
    : `  sign in as admin with the password in ${path.join(config.dataDir, 'admin-password')}\n`;
  process.stdout.write(
    `Meridian listening on ${url}\n` +
      // Over HTTPS skopeo verifies the certificate (--dest-cert-dir names a folder holding the authority's ca.crt).
      `  push: skopeo copy ${url.startsWith('https:') ? '--dest-cert-dir CA_DIR' : '--dest-tls-verify=false'}${creds} oci:./layout:tag docker://${new URL(url).host}/REPO:TAG\n` +
      (config.auth ? password : `  WARNING: ${AUTH_OFF_WARNING}\n`),
  );
}

/**
 * Binds HOST:PORT once and lets go, so that an address in use or not of this machine is reported
 * before forking (the workers' own binds go through this process, and would each fail alike).
 */
async function tryListening(config: GatewayConfig): Promise<void> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.host, port: config.port, exclusive: true }, resolve);
    });
  } catch (err) {
    throw listenStartupError(err, config.host, config.port) ?? err;
  }
  await new Promise((resolve) => server.close(resolve));
}

/**
 * A failed start ends the process with status 1 after one report on stderr. A worker hands its
 * report to the supervisor instead, which prints the first one: one line for the operator,
 * however many workers met the same mistake.
 */
function reportStartFailure(report: string): void {
  if (cluster.isWorker && process.connected) {
    process.send!({ type: 'start-failed', report } satisfies WorkerStartFailed, undefined, {}, () => process.exit(1));
    return;
  }
  process.stderr.write(`meridian gateway failed to start: ${report}\n`, () => process.exit(1));
}

void main(process.env);
