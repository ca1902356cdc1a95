import { Router } from 'express';
import { z } from 'zod';
import { RegionNameSchema } from '@meridian/proto';
import { parseRequest } from '../http/validate.js';
import type { Reconciler } from './reconciler.js';

const QuerySchema = z.object({ region: RegionNameSchema.optional(), verify: z.enum(['true', 'false']).optional() });

/** `POST /api/v1/reconcile[?region=NAME&verify=true]`: one reconciliation pass now, with its summary per region. */
export function createReconcileRouter(deps: { reconciler: Reconciler }): Router {
  const router = Router();
  router.post('/api/v1/reconcile', async (req, res) => {
    const query = parseRequest(QuerySchema, req.query, 'query');
    const regions = await deps.reconciler.run({ ...(query.region !== undefined ? { region: query.region } : {}), verify: query.verify === 'true' });
    res.json({ regions });
  });
  return router;
}
