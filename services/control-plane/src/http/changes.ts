import { Router } from 'express';
import { z } from 'zod';
import { ChangeBatchSchema } from '@meridian/proto';
import type { ReplicationService } from '../replication.js';
import { parseRequest } from './validate.js';

const BIGINT_MAX = 2n ** 63n - 1n;

/** The batch schema, with seq and hlc bounded by what a Postgres bigint holds. */
const StorableBatchSchema = ChangeBatchSchema.superRefine((batch, ctx) => {
  batch.changes.forEach((change, index) => {
    for (const field of ['seq', 'hlc'] as const) {
      if (BigInt(change[field]) > BIGINT_MAX) ctx.addIssue({ code: 'custom', path: ['changes', index, field], message: `above ${BIGINT_MAX}` });
    }
  });
});

/** `/api/v1/changes`: what each region's outbox relay delivers. */
export function createChangesRouter(deps: { replication: ReplicationService }): Router {
  const router = Router();
  router.post('/api/v1/changes', async (req, res) => {
    const batch = parseRequest(StorableBatchSchema, req.body, 'body');
    res.json(await deps.replication.ingest(batch));
  });
  router.get('/api/v1/changes/:id', async (req, res) => {
    const stored = await deps.replication.getChange(req.params.id);
    res.json({ id: stored.id, ...stored.change, receivedAt: stored.receivedAt });
  });
  return router;
}
