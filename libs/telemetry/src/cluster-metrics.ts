import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Exposition, Metrics } from './metrics.js';

/** What a worker asks its primary for, and what comes back. */
interface ExpositionRequest {
  type: 'meridian:metrics-request';
  id: number;
}
interface ExpositionReply {
  type: 'meridian:metrics-reply';
  id: number;
  exposition?: Exposition;
  error?: string;
}

const REPLY_TIMEOUT_MS = 10_000;

/**
 * In the primary of a node:cluster service (the supervisor of the gateway or the router): answers a worker's
 * request for the metrics of every worker, summed (prom-client's AggregatorRegistry asks each
 * worker for its series over IPC). A scrape reaches whichever worker the primary hands the
 * connection to; without this it would see that one worker's counts.
 */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: ExpositionRequest) => {
    if (message?.type !== 'meridian:metrics-request') return;
    const reply = (fields: Partial<ExpositionReply>) => {
      if (worker.isConnected()) worker.send({ type: 'meridian:metrics-reply', id: message.id, ...fields } satisfies ExpositionReply);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ exposition: { contentType: aggregator.contentType, text } }),
      (err: Error) => reply({ error: err.message }),
    );
  });
}

/**
 * Where a process's `/metrics` comes from: its own registry, or, in a worker of a node:cluster
 * service, the sum over every worker, from the primary (which must call serveClusterMetrics).
 */
export function metricsSource(metrics: Metrics): () => Promise<Exposition> {
  if (!cluster.isWorker) return () => metrics.exposition();
  // prom-client answers the primary's aggregation with these registries, once an aggregator
  // exists in this process (its constructor installs the worker's side of the exchange).
  AggregatorRegistry.setRegistries([metrics.registry]);
  new AggregatorRegistry();
  let nextId = 0;
  const waiting = new Map<number, { resolve(exposition: Exposition): void; reject(err: Error): void }>();
  process.on('message', (message: ExpositionReply) => {
    if (message?.type !== 'meridian:metrics-reply') return;
    const pending = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.exposition) pending?.resolve(message.exposition);
    else pending?.reject(new Error(`the supervisor could not gather the metrics of its workers: ${message.error}`));
  });
  return () =>
    new Promise<Exposition>((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the supervisor did not answer a metrics request within ${REPLY_TIMEOUT_MS / 1000} s`));
      }, REPLY_TIMEOUT_MS);
      waiting.set(id, {
        resolve: (exposition) => (clearTimeout(timer), resolve(exposition)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
      process.send!({ type: 'meridian:metrics-request', id } satisfies ExpositionRequest);
    });
}
