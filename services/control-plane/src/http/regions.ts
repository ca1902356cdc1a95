import { Router } from 'express';
import { z } from 'zod';
import { RegionNameSchema } from '@meridian/proto';
import { InvalidRequestError } from '../errors.js';
import type { RegionService } from '../regions.js';
import { parseRequest } from './validate.js';

const NewRegionSchema = z.object({
  name: RegionNameSchema,
  http: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }),
  grpc: z.string().regex(/^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/, 'host:port'),
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
  /** An edge region: it keeps at most this many bytes of blobs, filled on demand. */
  cacheBytes: z.number().int().positive().optional(),
});

const NamePathSchema = z.object({ name: RegionNameSchema });
const RemoveQuerySchema = z.object({ purge: z.enum(['true', 'false']).optional(), force: z.enum(['true', 'false']).optional() });
const RoutingSchema = z.object({ enabled: z.boolean() });

/** `/api/v1/regions`: list, register, remove (and purge), the routing switch, heartbeat. */
export function createRegionsRouter(deps: { regions: RegionService }): Router {
  const router = Router();
  router.get('/api/v1/regions', async (_req, res) => {
    res.json({ regions: await deps.regions.list() });
  });
  router.post('/api/v1/regions', async (req, res) => {
    const region = parseRequest(NewRegionSchema, req.body, 'body');
    res.status(201).json(await deps.regions.add(region));
  });
  router.delete('/api/v1/regions/:name', async (req, res) => {
    const { name } = parseRequest(NamePathSchema, req.params, 'path');
    const { purge, force } = parseRequest(RemoveQuerySchema, req.query, 'query');
    if (force === 'true' && purge !== 'true') throw new InvalidRequestError('query.force: only goes with purge=true');
    // A purge answers once it is done: the region is gone, and what it deleted is known.
    if (purge === 'true') res.json(await deps.regions.purge(name, { force: force === 'true' }));
    else res.status(202).json(await deps.regions.remove(name));
  });
  router.put('/api/v1/regions/:name/routing', async (req, res) => {
    const { name } = parseRequest(NamePathSchema, req.params, 'path');
    const { enabled } = parseRequest(RoutingSchema, req.body, 'body');
    res.json(await deps.regions.setRouting(name, enabled));
  });
  router.post('/api/v1/regions/:name/heartbeat', async (req, res) => {
    const { name } = parseRequest(NamePathSchema, req.params, 'path');
    await deps.regions.heartbeat(name);
    res.status(204).end();
  });
  return router;
}
