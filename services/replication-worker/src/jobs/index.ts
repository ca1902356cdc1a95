import { JobName } from '@meridian/proto';
import type { Logger } from 'pino';

export interface JobContext {
  /** Aborts when the worker hands the job back (shutdown) or BullMQ cancels it: stop, leaving what is done. */
  signal: AbortSignal;
  log: Logger;
  /** 1 for the first run of the job. */
  attempt: number;
}

/**
 * What the worker does for one job name. Every step of `run` must be idempotent: a job runs
 * again after a retryable failure, after a crash, and when a shutdown hands it back.
 */
export interface JobHandler<Data = unknown> {
  readonly name: JobName;
  /** The payload, validated; throws for one that is not this job's (the job then fails without retries). */
  parse(data: unknown): Data;
  /** Does the work and records its outcome; throws to be retried (grpc-errors.ts judges whether). */
  run(data: Data, context: JobContext): Promise<void>;
  /** The job will not run again (attempts used up, or a failure that will not mend): record `error` as its last. */
  giveUp(data: Data, error: Error, attempt: number): Promise<void>;
}

/**
 * The handlers by job name. Refuses to be built unless every job name has exactly one handler
 * (CONTRIBUTING.md, 'Wiring'): a job with no handler would fail every time, and one with two
 * would run whichever came last.
 */
export class JobRouter {
  private readonly handlers: ReadonlyMap<string, JobHandler<any>>;

  constructor(handlers: JobHandler<any>[], names: readonly string[] = Object.values(JobName)) {
    const problems: string[] = [];
    for (const name of names) {
      const count = handlers.filter((h) => h.name === name).length;
      if (count !== 1) problems.push(`job ${name} has ${count} handlers`);
    }
    for (const handler of handlers) if (!names.includes(handler.name)) problems.push(`a handler for ${handler.name}, which is no job name`);
    if (problems.length > 0) throw new Error(`every job name needs exactly one handler: ${problems.join('; ')}`);
    this.handlers = new Map(handlers.map((h) => [h.name, h]));
  }

  handlerFor(name: string): JobHandler<any> | undefined {
    return this.handlers.get(name);
  }
}
