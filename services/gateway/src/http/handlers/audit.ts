import express, { type RequestHandler } from 'express';
import { PaginationInvalidError } from '@meridian/oci';
import { AUDIT_PAGE_MAX, auditPage, decodeAuditCursor, type AuditStore } from '@meridian/metadata';
import { queryValue } from '../request.js';

export const AUDIT_PATH = '/api/v1/audit';
const DEFAULT_PAGE = 100;

/**
 * `GET /api/v1/audit?since=ISO-TIME&limit=N&after=CURSOR`: the region's audit log, oldest first,
 * from `since`; `next` in the answer continues it (`after=`). Behind `gate` (an administrator's
 * credentials) when MERIDIAN_AUTH is on.
 */
export function createAuditRouter({ store, gate }: { store: AuditStore; gate?: RequestHandler }): RequestHandler {
  const router = express.Router();
  router.get(AUDIT_PATH, ...(gate ? [gate] : []), (req, res, next) => {
    void (async () => {
      const since = queryValue(req, 'since');
      const sinceDate = since === undefined ? undefined : new Date(since);
      if (sinceDate && Number.isNaN(sinceDate.getTime())) throw new PaginationInvalidError('since: expected an ISO 8601 time');
      const limitText = queryValue(req, 'limit');
      const limit = limitText === undefined ? DEFAULT_PAGE : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_PAGE_MAX) throw new PaginationInvalidError(`limit: expected 1 to ${AUDIT_PAGE_MAX}`);
      const afterText = queryValue(req, 'after');
      const after = afterText === undefined ? undefined : decodeAuditCursor(afterText);
      if (afterText !== undefined && !after) throw new PaginationInvalidError('after: expected the `next` of an earlier answer');
      const fetched = await store.list({ ...(sinceDate ? { since: sinceDate } : {}), ...(after ? { after } : {}), limit: limit + 1 });
      res.setHeader('Cache-Control', 'no-store');
      res.json(auditPage(fetched, limit));
    })().catch(next);
  });
  return router;
}
