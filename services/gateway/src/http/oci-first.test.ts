import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type RequestHandler } from 'express';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createErrorHandler, routeNotFound } from './error-handler.js';
import { expressBuiltMessages } from './express-messages.js';
import { createBlobRedirects } from './blob-redirects.js';
import { dispatchOciFirst } from './oci-first.js';
import { createOciRouter } from './oci-router.js';

// The OCI router runs before express (oci-first.ts); what it passes on must be treated as
// express's own router would treat a middleware's `next` (express 5, router "next"): nothing or
// 'route' goes on to the app's routes, 'router' leaves them for the final 404, anything else is
// an error answered once, through the one error table (CONTRIBUTING.md, 'Errors').
describe('requests dispatched to the OCI router before express', () => {
  let server: http.Server | undefined;

  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(ociRouter: RequestHandler): Promise<string> {
    const app = express();
    app.get('/healthz', (_req, res) => void res.send('ok'));
    app.use(routeNotFound);
    const errorHandler = createErrorHandler(pino({ level: 'silent' }));
    app.use(errorHandler);
    server = http.createServer(expressBuiltMessages(app), dispatchOciFirst(app, (_req, _res, next) => next(), ociRouter, errorHandler));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("next('route') goes on to the app's routes, as express does for a middleware", async () => {
    const base = await serve((_req, _res, next) => next('route'));
    const response = await fetch(`${base}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
  });

  it("next('router') leaves the app's routes: the final 404, from the error table", async () => {
    const base = await serve((_req, _res, next) => next('router'));
    const response = await fetch(`${base}/healthz`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] });
  });

  // distribution-spec v1.1 "Determining support" (GET /v2/): a guard or handler that fails with
  // no reason at all (a rejected promise's reason undefined) has failed; express 5 makes such a
  // rejection an Error rather than read it as "not mine, go on".
  it('a failure without a reason is answered as an error, not handed on to the app as another route', async () => {
    const ociRouter = createOciRouter({
      registry: {} as never,
      inFlight: new Set(),
      metrics: {} as never,
      blobRedirects: createBlobRedirects(undefined),
      guard: async () => Promise.reject(undefined),
    });
    const base = await serve(ociRouter);
    const response = await fetch(`${base}/v2/`);
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ errors: [{ code: 'UNKNOWN' }] });
  });

  it('an error, thrown or passed on, is answered once through the error table', async () => {
    for (const ociRouter of [
      (() => {
        throw new Error('thrown');
      }) satisfies RequestHandler,
      ((_req, _res, next) => next(new Error('passed on'))) satisfies RequestHandler,
    ]) {
      const base = await serve(ociRouter);
      const response = await fetch(`${base}/v2/`);
      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({ errors: [{ code: 'UNKNOWN', message: expect.any(String) }] });
      await new Promise<void>((resolve) => server!.close(() => resolve()));
      server = undefined;
    }
  });
});
