import cluster from 'node:cluster';
import { pino, type Logger } from 'pino';
import { checkListenAddress, reportListening, reportStartFailure, superviseWorkers } from '@meridian/supervisor';
import { AUTH_OFF_WARNING, startBanner } from './banner.js';
import { loadConfig, wantsStackTraces, type GatewayConfig } from './config.js';
import { describeStartFailure, listenStartupError, passwordsIn, StartupError } from './startup-errors.js';
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
    const report = describeStartFailure(err, { stacks: wantsStackTraces(env), secrets });
    // A worker hands its report to the supervisor, which prints the first one.
    if (!reportStartFailure(report)) process.stderr.write(`meridian gateway failed to start: ${report}\n`, () => process.exit(1));
  }
}

/**
 * glibc hands freed heap back to the system once more than 128 KiB of it sits at the top of the
 * heap. Node's HTTP parser copies every piece of a request body (64 KiB) into a new malloc'd
 * buffer, so a push made the heap top grow and shrink without end, and on a virtual machine a
 * page handed back costs a fault in the host the next time it is touched (e2e/bench/README.md,
 * "What made the difference, and what was left"). Measured here pushing 256 MiB blobs one at a time into one gateway process:
 * 960–975 ms of its CPU per blob and 37 full garbage collections in four blobs; with the heap
 * kept (this setting), 410–570 ms and 2. Workers keep up to 64 MiB of freed heap; glibc reads
 * this only when a process starts, hence the environment of each fork.
 */
const WORKER_ENV = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=67108864' };

/**
 * A young generation of up to 32 MiB per semi-space rather than V8's 16: every request allocates
 * (parser, headers, promises of each file call and query), and with the larger nursery fewer
 * scavenges run and fewer short-lived objects survive into the old generation. Two gateways
 * side by side taking alternate small images pushed as skopeo pushes them (a connection per
 * request), the one with this flag used 0.89-0.97 of the other's CPU per image (median 0.95, five
 * rounds); the young generation grows to it only while the allocation rate needs it.
 */
const WORKER_EXEC_ARGV = ['--max-semi-space-size=32'];

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
    process.stdout.write(startBanner(url, config));
    return;
  }
  // Prepare once (data directory, database, schema, upload secret) and try the address, so the
  // workers find the region ready, and a mistake is reported once rather than by every worker.
  const { prepareRegion } = await import('./region-setup.js');
  await prepareRegion(config, logger);
  await checkListenAddress(config.host, config.port).catch((err) => {
    throw listenStartupError(err, config.host, config.port) ?? err;
  });
  // A scrape of /metrics reaches one worker, which asks here for the sum over all of them.
  serveClusterMetrics();
  const supervision = superviseWorkers({
    workers: config.workers,
    logger,
    service: 'gateway',
    startFailure: (report) => new StartupError(report),
    workerEnv: WORKER_ENV,
    workerExecArgv: WORKER_EXEC_ARGV,
  });
  supervision.stopped.then((code) => process.exit(code));
  const url = await supervision.ready;
  logger.info({ url, region: config.region, workers: config.workers }, 'gateway listening');
  process.stdout.write(startBanner(url, config));
}

async function runGateway(config: GatewayConfig, logger: Logger): Promise<string> {
  // Tracing starts before the modules it instruments are loaded (pg, express, ...).
  const tracing = config.otlpEndpoint ? await startTracing({ service: 'gateway', region: config.region, endpoint: config.otlpEndpoint, readSampleRatio: config.traceReadRatio, readTracesPerSecond: config.traceReadsPerSecond, writeTracesPerSecond: config.traceWritesPerSecond, express: false, httpServerSpans: false }) : undefined;
  // Loaded only by a process that serves: the supervisor never does, and a mistake found before
  // this point is reported without waiting for the HTTP app and the domain layer to load.
  const { createApp } = await import('./app.js');
  const gateway = await createApp(config, logger, tracing ? { requestTracing: tracing.requests } : {});
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
  if (cluster.isWorker) reportListening(url, () => stop('SIGTERM'));
  else logger.info({ url, region: config.region, dataDir: config.dataDir }, 'gateway listening');
  return url;
}

void main(process.env);
