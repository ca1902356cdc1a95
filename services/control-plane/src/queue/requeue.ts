import type { Logger } from 'pino';
import type { ReplicateJob } from '@meridian/proto';
import type { ReplicationKey, ReplicationStore } from '../store/replications.js';
import type { ReplicationQueue } from './replication-queue.js';

const PAGE_SIZE = 500;

export interface RequeueOptions {
  replications: ReplicationStore;
  queue: ReplicationQueue;
  intervalMs: number;
  logger: Logger;
}

/**
 * Adds every replication row still pending in Postgres to the queue: at start, every interval,
 * and each time Redis comes back. Job ids are deterministic, so a job still queued is not added
 * twice; a job Redis lost (a restart without persistence, a flush) comes back. This is what
 * makes Postgres, not Redis, the record of unfinished work.
 */
export class Requeue {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private again = false;

  constructor(private readonly options: RequeueOptions) {}

  start(): void {
    this.options.queue.onReconnect(() => this.trigger());
    this.trigger();
    this.timer = setInterval(() => this.trigger(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.again = false;
    await this.running;
  }

  /**
   * One pass over every pending row (or over one region's); resolves with how many jobs it
   * offered to the queue. A pass asked for while one runs starts when that one ends, so rows made
   * meanwhile are covered.
   */
  async run(region?: string): Promise<number> {
    while (this.running) {
      await this.running;
    }
    this.running = this.pass(region).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private trigger(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    void this.run()
      .catch((err) => this.options.logger.warn({ err }, 'requeue pass failed'))
      .then(() => {
        if (this.again && this.timer) {
          this.again = false;
          this.trigger();
        }
      });
  }

  private async pass(region?: string): Promise<number> {
    const { replications, queue, logger } = this.options;
    if (!queue.connected) return 0;
    let offered = 0;
    let after: ReplicationKey | undefined;
    for (;;) {
      const jobs: ReplicateJob[] = await replications.pendingJobs(after, PAGE_SIZE, region);
      if (jobs.length === 0) break;
      // Redis went away in the middle: the next pass (on reconnect) starts over.
      if (!(await queue.enqueue(jobs, { onlyMissing: true }))) break;
      offered += jobs.length;
      const last = jobs[jobs.length - 1]!;
      after = { changeId: last.changeId, region: last.region };
      if (jobs.length < PAGE_SIZE) break;
    }
    if (offered > 0) logger.debug({ offered, region }, 'requeue: pending replications offered to the queue');
    return offered;
  }
}
