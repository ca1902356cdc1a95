import type { RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { RegistryError } from '@meridian/oci';

/** One part the gateway needs in order to serve: resolves when it answers, throws saying why not. */
export type ReadinessCheck = () => Promise<void>;

export interface HealthDependencies {
  /** The parts, by the name /readyz reports them under ("database", "blobStore"). */
  checks: Record<string, ReadinessCheck>;
  logger: Logger;
  /** How long a part may take to answer before it counts as failed. */
  timeoutMs?: number;
}

/** What /readyz says of one part. */
type PartState = { ok: true } | { ok: false; error: string };

/**
 * `/healthz` and `/readyz`, for orchestrators and load balancers (outside distribution-spec):
 *
 * - GET or HEAD `/healthz`: 200 `{"status":"ok"}` whenever the process answers at all. It says
 *   only that the process lives: a restart cures none of what /readyz checks.
 * - GET or HEAD `/readyz`: 200 when every part answers within `timeoutMs`; otherwise 503, and
 *   the body names each part with what is wrong, e.g.
 *   `{"status":"unavailable","checks":{"database":{"ok":true},"blobStore":{"ok":false,"error":"…"}}}`.
 *   The store's check writes a few bytes and removes them, so a read-only or full disk shows.
 *
 * A part checked by several requests at once is checked once. A part that starts or stops
 * failing is logged once, with its full cause (paths included); the body carries the error's
 * message only for the registry's own typed errors, and otherwise the system's error code, so
 * that nothing internal leaks through a public port. Anything else goes to `next()`.
 */
export function createHealthHandler({ checks, logger, timeoutMs = 2000 }: HealthDependencies): RequestHandler {
  const running = new Map<string, Promise<PartState>>();
  const failing = new Set<string>();

  const checkPart = (name: string, check: ReadinessCheck): Promise<PartState> => {
    let pending = running.get(name);
    if (!pending) {
      pending = withinTime(check(), timeoutMs).then(
        (): PartState => {
          if (failing.delete(name)) logger.info({ part: name }, `readiness: ${name} answers again`);
          return { ok: true };
        },
        (err: unknown): PartState => {
          if (!failing.has(name)) {
            failing.add(name);
            logger.error({ part: name, err, ...whereOf(err) }, `readiness: ${name} fails: ${(err as Error)?.message ?? String(err)}`);
          }
          return { ok: false, error: publicReason(err) };
        },
      );
      running.set(name, pending);
      void pending.finally(() => running.delete(name));
    }
    return pending;
  };

  return (req, res, next) => {
    const queryStart = req.url.indexOf('?');
    const pathname = queryStart === -1 ? req.url : req.url.slice(0, queryStart);
    if (pathname !== '/healthz' && pathname !== '/readyz') return next();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).setHeader('Allow', 'GET, HEAD');
      return void res.end();
    }
    if (pathname === '/healthz') return sendJson(res, req.method, 200, { status: 'ok' });
    const names = Object.keys(checks);
    Promise.all(names.map((name) => checkPart(name, checks[name]!))).then((states) => {
      const ready = states.every((state) => state.ok);
      const report = Object.fromEntries(names.map((name, i) => [name, states[i]!]));
      sendJson(res, req.method, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', checks: report });
    }, next);
  };
}

function sendJson(res: Response, method: string, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.status(status).setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.setHeader('Cache-Control', 'no-store');
  res.end(method === 'HEAD' ? undefined : payload);
}

function withinTime(check: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([check, late]).finally(() => clearTimeout(timer));
}

/** What the body may say of a failure: typed errors are ours to show; others only by code. */
function publicReason(err: unknown): string {
  if (err instanceof RegistryError) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code) return `failed: ${code}`;
  const message = (err as Error | undefined)?.message ?? '';
  return message.startsWith('no answer within') ? message : 'failed';
}

/** The path a storage failure hit, for the log. */
function whereOf(err: unknown): { path?: string } {
  const path = (err as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? { path } : {};
}
