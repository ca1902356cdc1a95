import { Router } from 'express';
import { z } from 'zod';
import { ChangeIdSchema, RegionNameSchema, ReplicationOutcomeSchema } from '@meridian/proto';
import type { ReplicationService } from '../replication.js';
import { parseRequest } from './validate.js';

const ReportPathSchema = z.object({ changeId: ChangeIdSchema, region: RegionNameSchema });
const StatusQuerySchema = z.object({
  repository: z.string().min(1).max(255),
  reference: z.string().min(1).max(200).optional(),
});

/** `/api/v1/replication`: outcomes from the worker, and where content stands in each region. */
export function createReplicationRouter(deps: { replication: ReplicationService }): Router {
  const router = Router();
  router.post('/api/v1/replication/:changeId/:region', async (req, res) => {
    const key = parseRequest(ReportPathSchema, req.params, 'path');
    const outcome = parseRequest(ReplicationOutcomeSchema, req.body, 'body');
    await deps.replication.report(key, outcome);
    res.status(204).end();
  });
  router.get('/api/v1/replication/status', async (req, res) => {
    const { repository, reference } = parseRequest(StatusQuerySchema, req.query, 'query');
    const items = await deps.replication.status(repository, reference);
    if (reference === undefined) {
      res.json({ repository, tags: items });
      return;
    }
    const [item] = items;
    res.json({ repository, reference, ...item });
  });
  return router;
}
