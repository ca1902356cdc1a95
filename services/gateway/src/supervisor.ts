import cluster from 'node:cluster';
import type { Logger } from 'pino';

/** The message a gateway worker sends its supervisor once it listens. */
export interface WorkerListening {
  type: 'listening';
  url: string;
}

export interface Supervision {
  /** Resolves with the URL once every worker listens; rejects if one dies before that. */
  ready: Promise<string>;
  /** Resolves with the exit code once a stop signal has been passed on and every worker is gone. */
  stopped: Promise<number>;
}

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
  const listening = new Set<number>();
  let resolveReady!: (url: string) => void;
  let rejectReady!: (err: Error) => void;
  let resolveStopped!: (code: number) => void;
  const readyPromise = new Promise<string>((resolve, reject) => ((resolveReady = resolve), (rejectReady = reject)));
  const stoppedPromise = new Promise<number>((resolve) => (resolveStopped = resolve));
  const alive = () => Object.keys(cluster.workers ?? {}).length;

  const fork = () => {
    const worker = cluster.fork();
    worker.on('message', (message: WorkerListening) => {
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
    if (code !== 0) failed = true;
    if (stopping) {
      if (alive() === 0) resolveStopped(failed ? 1 : 0);
    } else if (!ready) {
      // A gateway that cannot start (bad database URL, port taken) would fail again: give up.
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      rejectReady(new Error(`gateway worker exited (${signal ?? code}) before listening`));
      if (alive() === 0) resolveStopped(1);
    } else {
      logger.error({ pid: worker.process.pid, code, signal }, 'gateway worker died; starting another');
      fork();
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
