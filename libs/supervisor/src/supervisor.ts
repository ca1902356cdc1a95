import cluster from 'node:cluster';
import type { Logger } from 'pino';

/** The message a worker sends its supervisor once it listens. */
export interface WorkerListening {
  type: 'listening';
  url: string;
}

/**
 * The message a worker sends instead, when it cannot start: what it would have printed.
 * The supervisor prints the first one, once, rather than every worker printing the same mistake.
 */
export interface WorkerStartFailed {
  type: 'start-failed';
  report: string;
}

export interface Supervision {
  /**
   * Resolves with the URL once every worker listens. If one dies before that, the others are
   * stopped and it rejects with `startFailure` of the first worker's report (or of how it died).
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

export interface SupervisorOptions {
  /** How many worker processes to run, each a whole server of the service. */
  workers: number;
  logger: Logger;
  /** What the workers are, for the log ("gateway", "router"). */
  service: string;
  /** The error `ready` rejects with when the workers cannot start, from the report to print. */
  startFailure(report: string): Error;
  /** Variables added to each worker's environment (ones read only when a process starts). */
  workerEnv?: Record<string, string>;
  /** Node and V8 flags added to each worker's command line, after the supervisor's own. */
  workerExecArgv?: readonly string[];
}

/**
 * Runs `workers` processes of a service on one port with node:cluster, so the service uses every
 * core. The workers accept connections themselves, from the one listening socket they share,
 * rather than node:cluster's default on Linux, where the primary accepts each connection and
 * hands it to a worker in turn over IPC. That hand-off cost more than the rest of a short
 * request: skopeo, podman and buildah open a new connection for every request, and a gateway
 * behind the hand-off took about 3 800 new connections a second (`ab` without keep-alive on
 * `/healthz`, 2 workers) against about 6 700 with its workers accepting, and pushed small images
 * as skopeo does 1.2x faster. Each worker accepts one connection at a time (libuv's
 * UV_TCP_SINGLE_ACCEPT), so an idle worker does not take a burst of new connections while the
 * other waits: without it, eight keep-alive connections sometimes all landed on one worker.
 * NODE_CLUSTER_SCHED_POLICY=rr, node's own variable, restores the round robin. Each worker is a whole
 * server: what keeps workers coherent is the service's business (the gateway's Postgres change
 * notifications; the router's workers each read the region list and probe for themselves).
 * After start-up a worker that dies is replaced; SIGTERM or SIGINT is passed on, and `stopped`
 * resolves once every worker has finished its in-flight requests.
 */
export function superviseWorkers(options: SupervisorOptions): Supervision {
  const { workers, logger, service, startFailure, workerEnv, workerExecArgv } = options;
  // Read by node:cluster itself when it loads; only its absence is ours to decide. It must be
  // settled before the first setupPrimary() or fork().
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  const environment = { UV_TCP_SINGLE_ACCEPT: '1', ...workerEnv };
  if (workerExecArgv?.length) cluster.setupPrimary({ execArgv: [...process.execArgv, ...workerExecArgv] });
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
    const worker = cluster.fork(environment);
    startedAt.set(worker.id, Date.now());
    worker.on('message', (message: WorkerListening | WorkerStartFailed) => {
      if (message?.type === 'start-failed') {
        // Before the start, main prints the first report; a replacement's goes to the log.
        if (ready) logger.error({ pid: worker.process.pid, report: message.report }, `a replacement ${service} worker could not start`);
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
      // A worker that cannot start (a bad database URL, an unreadable certificate) would fail again: give up.
      stopping = true;
      startFailed = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      // The worker's report may still be in the IPC channel when its exit is seen; the channel
      // closes only after everything sent has been read. The report is printed verbatim: one
      // line for a mistake, a stack for a bug or at LOG_LEVEL=debug.
      const giveUp = () => rejectReady(startFailure(firstFailure ?? `a ${service} worker exited (${signal ?? code}) before listening`));
      if (worker.isConnected()) worker.once('disconnect', giveUp);
      else giveUp();
    } else {
      restartDelayMs = livedMs >= STABLE_WORKER_MS ? 0 : Math.min(Math.max(restartDelayMs * 2, MIN_RESTART_DELAY_MS), MAX_RESTART_DELAY_MS);
      logger.error({ pid: worker.process.pid, code, signal, restartDelayMs }, `${service} worker died; starting another`);
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
