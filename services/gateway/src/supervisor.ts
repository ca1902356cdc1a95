import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { StartupError } from './startup-errors.js';

/** The message a gateway worker sends its supervisor once it listens. */
export interface WorkerListening {
  type: 'listening';
  url: string;
}

/**
 * The message a gateway worker sends instead, when it cannot start: what it would have printed.
 * The supervisor prints the first one, once, rather than every worker printing the same mistake.
 */
export interface WorkerStartFailed {
  type: 'start-failed';
  report: string;
}

export interface Supervision {
  /**
   * Resolves with the URL once every worker listens. If one dies before that, the others are
   * stopped and it rejects with a StartupError holding the first worker's report (or how it died).
   */
  ready: Promise<string>;
  /**
   * Resolves with the exit code once a stop signal has been passed on and every worker is gone;
   * never after a failed start, whose outcome is `ready`'s rejection alone.
   */
  stopped: Promise<number>;
}

/** A worker that lived this long before dying is restarted at once. */
const STABLE_WORKER_MS = 30_000;
const MIN_RESTART_DELAY_MS = 250;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * glibc hands freed heap back to the system once more than 128 KiB of it sits at the top of the
 * heap. Node's HTTP parser copies every piece of a request body (64 KiB) into a new malloc'd
 * buffer, so a push made the heap top grow and shrink without end, and on a virtual machine a
 * page handed back costs a fault in the host the next time it is touched (README, "What made
 * the difference"). Measured here pushing 256 MiB blobs one at a time into one gateway process:
 * 960–975 ms of its CPU per blob and 37 full garbage collections in four blobs; with the heap
 * kept (this setting), 410–570 ms and 2. Workers keep up to 64 MiB of freed heap; glibc reads
 * this only when a process starts, hence the environment of each fork.
 */
const WORKER_ENV = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=67108864' };

/**
 * Runs `workers` gateway processes on one port with node:cluster (the primary accepts and hands
 * connections out round-robin), so a region's gateway uses every core. Workers are independent
 * gateways of the region, kept coherent by the same Postgres change notifications that keep
 * separate hosts coherent. After start-up a worker that dies is replaced; SIGTERM or SIGINT is
 * passed on, and `stopped` resolves once every worker has finished its in-flight requests.
 */
export function superviseWorkers(workers: number, logger: Logger): Supervision {
  let ready = false;
  let stopping = false;
  let failed = false;
  let startFailed = false;
  const listening = new Set<number>();
  let resolveReady!: (url: string) => void;
  let rejectReady!: (err: Error) => void;
  let resolveStopped!: (code: number) => void;
  const readyPromise = new Promise<string>((resolve, reject) => ((resolveReady = resolve), (rejectReady = reject)));
  const stoppedPromise = new Promise<number>((resolve) => (resolveStopped = resolve));
  const alive = () => Object.keys(cluster.workers ?? {}).length;

  // A worker that dies soon after it started is likely to die again (its database is gone, say):
  // each such death doubles the wait before the next start, so a broken region does not fork
  // in a tight loop. A worker that lived a while resets it.
  let restartDelayMs = 0;
  const startedAt = new Map<number, number>();
  let firstFailure: string | undefined;
  const fork = () => {
    const worker = cluster.fork(WORKER_ENV);
    startedAt.set(worker.id, Date.now());
    worker.on('message', (message: WorkerListening | WorkerStartFailed) => {
      if (message?.type === 'start-failed') {
        // Before the start, main prints the first report; a replacement's goes to the log.
        if (ready) logger.error({ pid: worker.process.pid, report: message.report }, 'a replacement gateway worker could not start');
        else firstFailure ??= message.report;
      }
      if (message?.type !== 'listening') return;
      listening.add(worker.id);
      if (!ready && listening.size === workers) {
        ready = true;
        resolveReady(message.url);
      }
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
    const livedMs = Date.now() - (startedAt.get(worker.id) ?? 0);
    startedAt.delete(worker.id);
    if (stopping) {
      // Only how the shutdown itself went decides the exit code; an earlier crash was handled.
      // A worker still starting has no SIGTERM handler yet, so the signal we sent ends it.
      if (signal === 'SIGTERM' ? code !== null && code !== 0 : code !== 0) failed = true;
      if (alive() === 0 && !startFailed) resolveStopped(failed ? 1 : 0);
    } else if (!ready) {
      // A gateway that cannot start (bad database URL, port taken) would fail again: give up.
      stopping = true;
      startFailed = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      // The worker's report may still be in the IPC channel when its exit is seen; the channel
      // closes only after everything sent has been read. The report is printed verbatim: one
      // line for a mistake, a stack for a bug or at LOG_LEVEL=debug.
      const giveUp = () => rejectReady(new StartupError(firstFailure ?? `a gateway worker exited (${signal ?? code}) before listening`));
      if (worker.isConnected()) worker.once('disconnect', giveUp);
      else giveUp();
    } else {
      restartDelayMs = livedMs >= STABLE_WORKER_MS ? 0 : Math.min(Math.max(restartDelayMs * 2, MIN_RESTART_DELAY_MS), MAX_RESTART_DELAY_MS);
      logger.error({ pid: worker.process.pid, code, signal, restartDelayMs }, 'gateway worker died; starting another');
      setTimeout(() => {
        if (!stopping) fork();
        else if (alive() === 0) resolveStopped(failed ? 1 : 0);
      }, restartDelayMs);
    }
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: workers finish their in-flight requests');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    if (alive() === 0) resolveStopped(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  for (let i = 0; i < workers; i++) fork();
  return { ready: readyPromise, stopped: stoppedPromise };
}
