import { Router, type Response } from 'express';
import type { DashboardAssets } from '../dashboard/assets.js';
import type { Dashboard } from '../dashboard/dashboard.js';

export interface DashboardRouterDeps {
  dashboard: Dashboard;
  /** The page and its assets, built once when first asked for. */
  assets: () => Promise<DashboardAssets>;
}

/**
 * Only what the dashboard's own answers hold may run or load: the page works with no network
 * beyond the control plane, and a stray external reference fails visibly in development.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const MAX_UNREAD_BYTES = 1024 * 1024;

/**
 * The per-region health dashboard: the page at `/dashboard` (its script and style under
 * `/dashboard/assets/`), its figures as JSON at `/api/v1/dashboard`, and the same as a stream of
 * Server-Sent Events at `/api/v1/dashboard/events`, one `snapshot` event after every collection
 * round.
 */
export function createDashboardRouter(deps: DashboardRouterDeps): Router {
  const router = Router();
  const send = async (res: Response, type: string, part: keyof DashboardAssets) => {
    const assets = await deps.assets();
    res.set({ 'content-type': type, 'cache-control': 'no-cache', 'content-security-policy': CONTENT_SECURITY_POLICY, 'x-content-type-options': 'nosniff' });
    res.send(assets[part]);
  };
  router.get('/dashboard', (_req, res) => send(res, 'text/html; charset=utf-8', 'html'));
  router.get('/dashboard/assets/app.js', (_req, res) => send(res, 'text/javascript; charset=utf-8', 'js'));
  router.get('/dashboard/assets/app.css', (_req, res) => send(res, 'text/css; charset=utf-8', 'css'));

  router.get('/api/v1/dashboard', async (_req, res) => {
    res.json(await deps.dashboard.snapshot());
  });
  router.get('/api/v1/dashboard/events', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    // EventSource reconnects by itself after a lost stream; this is how soon.
    res.write('retry: 2000\n\n');
    const unsubscribe = deps.dashboard.subscribe({
      send: (snapshot) => {
        // A client that does not read is skipped until it has taken what it was sent: the
        // snapshots it misses are stale anyway, and its buffer stays bounded.
        if (res.writableLength < MAX_UNREAD_BYTES) res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
      },
      end: () => res.end(),
    });
    req.on('close', unsubscribe);
  });
  return router;
}
