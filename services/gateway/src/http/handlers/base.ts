import type { RouteHandlers } from './handler.js';

/** distribution-spec v1.1 "Determining support": 200 means the v2 API is spoken here. */
const ok: RouteHandlers['GET'] = async ({ req, res }) => {
  res.status(200).setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', 2);
  res.end(req.method === 'HEAD' ? undefined : '{}');
};

export const baseHandlers: RouteHandlers = { GET: ok, HEAD: ok };
