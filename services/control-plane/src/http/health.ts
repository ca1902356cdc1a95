import { Router } from 'express';
import type pg from 'pg';
import { NotReadyError } from '../errors.js';
import type { ReplicationQueue } from '../queue/replication-queue.js';

/**
 * `/healthz`: the process answers. `/readyz`: its Postgres and its Redis answer too; a 503 names
 * the part that does not. The control plane keeps taking changes without Redis, but a load
 * balancer or an operator should know replication is stalled.
 */
export function createHealthRouter(deps: { pool: pg.Pool; queue: ReplicationQueue }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const failing: Record<string, string> = {};
    await Promise.all([
      deps.pool.query('SELECT 1').catch((err: Error) => (failing.postgres = err.message)),
      deps.queue.ping().catch((err: Error) => (failing.redis = err.message)),
    ]);
    if (Object.keys(failing).length > 0) throw new NotReadyError(failing);
    res.json({ status: 'ready' });
  });
  return router;
}
