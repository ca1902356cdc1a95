import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { JobName, REPLICATE_JOB_OPTIONS, REPLICATION_QUEUE, replicateJobId, type ReplicateJob } from '@meridian/proto';

export interface ReplicationQueueOptions {
  redisUrl: string;
  /** BullMQ key prefix; the worker must use the same. */
  prefix: string;
  logger: Logger;
}

/** Longest wait for one Redis command: a Redis that stopped answering must not hold a request. */
const COMMAND_TIMEOUT_MS = 5000;
const MAX_RECONNECT_DELAY_MS = 5000;

/** The job states the metrics report (completed jobs leave Redis at once: REPLICATE_JOB_OPTIONS). */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

/**
 * The producer side of the replication queue (BullMQ on Redis). Redis is a delivery mechanism
 * here, never the record: every job mirrors a pending row in Postgres, so nothing is lost when
 * Redis is down or loses its data, and no method of this class throws for want of Redis. While it
 * is away, enqueue and remove log and return; the requeue adds every pending row once it is back.
 *
 * ioredis reconnects for ever (growing delays, capped at 5 s). Its offline queue is off, so a
 * command issued while disconnected fails at once instead of waiting for the connection (BullMQ,
 * "Failing fast when Redis is down"), and a command that gets no answer fails after 5 s.
 */
export class ReplicationQueue {
  readonly redis: Redis;
  private readonly queue: Queue<ReplicateJob>;
  private readonly logger: Logger;
  private outage = false;

  constructor(options: ReplicationQueueOptions) {
    this.logger = options.logger;
    this.redis = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (times) => Math.min(times * 250, MAX_RECONNECT_DELAY_MS),
    });
    // ioredis reports every failed reconnect; one warning per outage is enough to read.
    this.redis.on('error', (err) => {
      if (this.outage) return this.logger.debug({ err }, 'redis still unreachable');
      this.outage = true;
      this.logger.warn({ err, redis: redactedUrl(options.redisUrl) }, 'redis unreachable: changes are stored and will be queued once it is back');
    });
    this.redis.on('ready', () => {
      if (this.outage) this.logger.info('redis reachable again');
      this.outage = false;
    });
    this.queue = new Queue<ReplicateJob>(REPLICATION_QUEUE, { connection: this.redis, prefix: options.prefix });
    this.queue.on('error', (err) => this.logger.debug({ err }, 'replication queue error'));
  }

  /** Whether Redis is connected now. */
  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  /** Calls `listener` each time the connection to Redis is (re)established. */
  onReconnect(listener: () => void): void {
    this.redis.on('ready', listener);
  }

  /**
   * Adds one job per (change, region); a job whose id is already queued is left as it is. With
   * `onlyMissing`, asks Redis first which of them it lacks (one round trip of EXISTS) and sends
   * only those: a requeue pass mostly finds every job in place, and adding a job carries its whole
   * payload through a script. Returns whether they were added: false (logged) when Redis is away
   * or refused.
   */
  async enqueue(jobs: ReplicateJob[], options: { onlyMissing?: boolean } = {}): Promise<boolean> {
    if (jobs.length === 0) return true;
    if (!this.connected) {
      this.logger.debug({ jobs: jobs.length }, 'redis unreachable: jobs left to the requeue');
      return false;
    }
    try {
      let wanted = jobs;
      if (options.onlyMissing) {
        const pipeline = this.redis.pipeline();
        for (const job of jobs) pipeline.exists(this.queue.toKey(replicateJobId(job.changeId, job.region)));
        const answers = (await pipeline.exec()) ?? [];
        wanted = jobs.filter((_, index) => {
          const [err, exists] = answers[index] ?? [null, 0];
          if (err) throw err;
          return exists === 0;
        });
        if (wanted.length === 0) return true;
      }
      await this.queue.addBulk(
        wanted.map((job) => ({ name: JobName.Replicate, data: job, opts: { ...REPLICATE_JOB_OPTIONS, jobId: replicateJobId(job.changeId, job.region) } })),
      );
      return true;
    } catch (err) {
      this.logger.warn({ err, jobs: jobs.length }, 'enqueueing replication jobs failed: left to the requeue');
      return false;
    }
  }

  /**
   * Removes the jobs of (change, region) pairs no longer wanted. A job being worked on stays (the
   * worker finds its target draining and reports it dropped); so does everything while Redis is
   * away, for the same reason.
   */
  async remove(keys: { changeId: string; region: string }[]): Promise<void> {
    if (keys.length === 0 || !this.connected) return;
    try {
      for (let start = 0; start < keys.length; start += 100) {
        await Promise.all(keys.slice(start, start + 100).map((key) => this.queue.remove(replicateJobId(key.changeId, key.region))));
      }
    } catch (err) {
      this.logger.warn({ err }, 'removing replication jobs failed: the worker will drop them');
    }
  }

  /**
   * How many jobs a worker is running against `region` right now (active, and locked by a live
   * worker); undefined when Redis cannot tell (away, or failing).
   */
  async runningFor(region: string): Promise<number | undefined> {
    if (!this.connected) return undefined;
    try {
      const active = (await this.queue.getJobs(['active'])).filter((job) => job?.data?.region === region);
      if (active.length === 0) return 0;
      // A job whose worker died (killed, crashed) stays 'active' until another worker's stalled
      // check moves it back to waiting, up to a minute with BullMQ's defaults (lock 30 s, check
      // every 30 s), while nothing runs it; run again, it finds its region no longer taking
      // replication and is dropped. Only a job whose lock a worker holds is running. A live
      // worker that could not renew its lock for 30 s (Redis away, its event loop stalled) is
      // missed too, and may still be writing: BullMQ counts its job as stalled as well.
      // Waiting for every active job instead made a purge after a worker's crash wait for a
      // minute and then refuse.
      const pipeline = this.redis.pipeline();
      for (const job of active) pipeline.exists(`${this.queue.toKey(job.id!)}:lock`);
      const answers = (await pipeline.exec()) ?? [];
      return answers.filter(([err, held]) => {
        if (err) throw err;
        return held === 1;
      }).length;
    } catch (err) {
      this.logger.warn({ err }, 'reading the running replication jobs failed');
      return undefined;
    }
  }

  /** Jobs in the queue by state; throws when Redis is away. */
  async jobCounts(): Promise<Record<JobState, number>> {
    if (!this.connected) throw new Error(`not connected (${this.redis.status})`);
    const counts = await this.queue.getJobCounts(...JOB_STATES);
    return Object.fromEntries(JOB_STATES.map((state) => [state, counts[state] ?? 0])) as Record<JobState, number>;
  }

  /** Throws unless Redis answers a PING. */
  async ping(): Promise<void> {
    if (!this.connected) throw new Error(`not connected (${this.redis.status})`);
    await this.redis.ping();
  }

  async close(): Promise<void> {
    await this.queue.close().catch((err) => this.logger.debug({ err }, 'closing the replication queue'));
    this.redis.disconnect();
  }
}

/** The Redis URL for logs: never its password. */
function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '*****';
  return parsed.toString();
}
