import { Metrics, type Counter, type Histogram } from '@meridian/telemetry';

/** What the replicate handler records of each job it finishes. */
export interface WorkerMetrics {
  metrics: Metrics;
  /** From a change's commit at its origin to its application at a target, for changes applied (`done`), backfill left out. */
  replicationLag: Histogram<'target_region'>;
  /** Jobs finished, by target and outcome (done, superseded, dropped, failed). */
  jobsFinished: Counter<'target_region' | 'outcome'>;
  /** Blob bytes copied to targets. */
  bytesCopied: Counter<'target_region'>;
}

/** Seconds: a change is applied within a second on an idle cluster; a region catching up takes minutes. */
const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** The replication worker's metrics (README, "Observability"). */
export function createWorkerMetrics(): WorkerMetrics {
  const metrics = new Metrics({ service: 'replication-worker' });
  return {
    metrics,
    replicationLag: metrics.histogram({
      name: 'meridian_replication_lag_seconds',
      help: 'From the commit of a change at its origin region to its application at a target region (backfills of a new region left out).',
      labelNames: ['target_region'],
      buckets: LAG_BUCKETS,
    }),
    jobsFinished: metrics.counter({
      name: 'meridian_replication_jobs_finished_total',
      help: 'Replication jobs finished, by target region and outcome.',
      labelNames: ['target_region', 'outcome'],
    }),
    bytesCopied: metrics.counter({
      name: 'meridian_replication_bytes_copied_total',
      help: 'Blob bytes copied to target regions.',
      labelNames: ['target_region'],
    }),
  };
}
