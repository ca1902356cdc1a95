import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { REPLICATION_QUEUE } from '@meridian/proto';
import type { Logger } from 'pino';
import { isRetryable, spendsAttempt } from './grpc-errors.js';
import type { JobRouter } from './jobs/index.js';

/** How long a job waits for the control plane (away, or unable to record an outcome) before it runs again. */
const CONTROL_PLANE_RETRY_MS = 5_000;

export interface QueueWorkerOptions {
  redisUrl: string;
  /** BullMQ key prefix: the control plane's. */
  prefix: string;
  concurrency: number;
  router: JobRouter;
  logger: Logger;
}

/**
 * The BullMQ side: takes jobs from REPLICATION_QUEUE, runs each through its handler, and turns
 * the handler's failure into BullMQ's decision:
 * - retryable (grpc-errors.ts) with attempts left: thrown as is, so BullMQ backs off (the job's
 *   `attempts` and `backoff` options, set by whoever adds it) and runs it again;
 * - retryable on the last attempt, or not retryable at all: the handler records the failure
 *   (giveUp) first, then the job fails in BullMQ (UnrecoverableError skips the attempts left).
 *   If the failure cannot be recorded (the control plane is away), the job goes back to the
 *   delayed set without spending an attempt and tries again, so a failure is never lost;
 * - the control plane away (regions cannot be read, the outcome cannot be reported): the job
 *   goes back to the delayed set without spending an attempt;
 * - the worker stopping: the job goes back to the queue without spending an attempt, and a
 *   worker picks it up (and resumes its copy) later.
 */
export class QueueWorker {
  private readonly shutdown = new AbortController();
  private readonly worker: Worker;
  private running: Promise<void> | undefined;
  /** For /readyz: fails at once while Redis is away rather than queueing the PING. */
  private readonly probe: Redis;

  constructor(private readonly options: QueueWorkerOptions) {
    this.worker = new Worker(REPLICATION_QUEUE, (job, token, signal) => this.process(job, token, signal), {
      connection: { url: options.redisUrl },
      prefix: options.prefix,
      concurrency: options.concurrency,
      autorun: false,
      // A worker killed mid-job leaves the job to be found stalled and run again; every step is
      // idempotent, so a few such restarts cost time, not correctness.
      maxStalledCount: 3,
    });
    this.worker.on('error', (err) => options.logger.error({ err }, 'queue worker error'));
    this.probe = new Redis(options.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000, retryStrategy: (times) => Math.min(times * 250, 5000) });
    // The worker's own connections report an outage; this one stays quiet.
    this.probe.on('error', () => undefined);
  }

  /** Throws unless Redis answers a PING (on a connection of its own: BullMQ's own are blocked in waits). */
  async ping(): Promise<void> {
    if (this.probe.status !== 'ready') throw new Error(`not connected (${this.probe.status})`);
    await this.probe.ping();
  }

  /** Resolves once connected to Redis and taking jobs. */
  async start(): Promise<void> {
    await this.worker.waitUntilReady();
    this.running = this.worker.run().catch((err) => this.options.logger.error({ err }, 'queue worker stopped on an error'));
  }

  /**
   * Stops taking jobs and lets running ones finish for up to `graceMs`; then the rest are
   * cancelled and handed back to the queue.
   */
  async stop(graceMs: number): Promise<void> {
    const closing = this.worker.close();
    const timer = setTimeout(() => this.shutdown.abort(new Error('the worker is stopping')), graceMs);
    try {
      await closing;
      await this.running;
    } finally {
      clearTimeout(timer);
      this.probe.disconnect();
    }
  }

  private async process(job: Job, token: string | undefined, cancelled?: AbortSignal): Promise<void> {
    const handler = this.options.router.handlerFor(job.name);
    if (!handler) throw new UnrecoverableError(`no handler for job name ${job.name}`);
    const log = this.options.logger.child({ job: job.id, name: job.name, attempt: job.attemptsMade + 1 });
    let data: unknown;
    try {
      data = handler.parse(job.data);
    } catch (err) {
      log.error({ err }, 'job payload refused');
      throw new UnrecoverableError((err as Error).message);
    }
    const signal = cancelled ? AbortSignal.any([this.shutdown.signal, cancelled]) : this.shutdown.signal;
    try {
      await handler.run(data, { signal, log, attempt: job.attemptsMade + 1 });
    } catch (thrown) {
      if (this.shutdown.signal.aborted) {
        log.info('handed back to the queue: the worker is stopping');
        return this.delay(job, token, 0);
      }
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      if (!spendsAttempt(error)) {
        log.warn({ err: error }, 'waiting for the control plane');
        return this.delay(job, token, CONTROL_PLANE_RETRY_MS);
      }
      const retryable = isRetryable(error);
      if (retryable && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
        log.warn({ err: error }, 'attempt failed; retrying after back-off');
        throw error;
      }
      try {
        await handler.giveUp(data, error, job.attemptsMade + 1);
      } catch (reportError) {
        log.warn({ err: reportError }, 'could not record the failure; trying again later');
        return this.delay(job, token, CONTROL_PLANE_RETRY_MS);
      }
      log.error({ err: error }, 'job failed');
      throw retryable ? error : new UnrecoverableError(error.message);
    }
  }

  /** Back to the delayed set, not counted as an attempt. */
  private async delay(job: Job, token: string | undefined, ms: number): Promise<never> {
    await job.moveToDelayed(Date.now() + ms, token);
    throw new DelayedError();
  }
}
