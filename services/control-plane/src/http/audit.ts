import { Router } from 'express';
import { z } from 'zod';
import { AUDIT_PAGE_MAX, auditPage, decodeAuditCursor } from '@meridian/metadata';
import { AuditBatchSchema } from '@meridian/proto/audit';
import type { ClusterAuditStore } from '../store/audit.js';
import { parseRequest } from './validate.js';

const AuditQuerySchema = z.object({
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(AUDIT_PAGE_MAX).default(100),
  after: z
    .string()
    .refine((text) => decodeAuditCursor(text) !== undefined, 'expected the `next` of an earlier answer')
    .optional(),
});

/**
 * The cluster's audit log: `POST /api/v1/audit/batches`, what each region's audit shipper
 * delivers (at least once; an entry delivered again is stored once), and
 * `GET /api/v1/audit?since=ISO-TIME&limit=N&after=CURSOR`, every region's entries, oldest first,
 * as a region's gateway answers for its own (`meridian audit` reads either).
 */
export function createAuditRouter(deps: { audit: ClusterAuditStore }): Router {
  const router = Router();
  router.post('/api/v1/audit/batches', async (req, res) => {
    const batch = parseRequest(AuditBatchSchema, req.body, 'body');
    res.json({ stored: await deps.audit.store(batch.region, batch.entries) });
  });
  router.get('/api/v1/audit', async (req, res) => {
    const query = parseRequest(AuditQuerySchema, req.query, 'query');
    const after = query.after === undefined ? undefined : decodeAuditCursor(query.after);
    const fetched = await deps.audit.list({ ...(query.since ? { since: new Date(query.since) } : {}), ...(after ? { after } : {}), limit: query.limit + 1 });
    res.setHeader('Cache-Control', 'no-store');
    res.json(auditPage(fetched, query.limit));
  });
  return router;
}
