import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { expressBuiltMessages } from './express-messages.js';

// The gateway's server builds requests and responses with express's prototypes (see
// express-messages.ts). What must hold: the prototypes really are express's before express
// sees the objects (or the speed-up silently stops), and express behaves exactly as usual.
describe('requests and responses built with express prototypes', () => {
  let server: http.Server | undefined;

  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('are express objects from the start, and express routing, query, locals and json still work', async () => {
    const app = express();
    const seen: { request: boolean; response: boolean }[] = [];
    app.get('/v2/:name/tags/list', (req, res) => {
      res.locals.name = req.params.name;
      res.set('Docker-Distribution-API-Version', 'registry/2.0');
      res.json({ name: res.locals.name, n: req.query.n, sameApp: req.app === app, linked: res.req === req && req.res === res });
    });
    server = http.createServer(expressBuiltMessages(app), app);
    // Runs before express's handler: what the objects are when express receives them.
    server.prependListener('request', (req, res) => {
      seen.push({ request: Object.getPrototypeOf(req) === app.request, response: Object.getPrototypeOf(res) === app.response });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;

    for (let i = 0; i < 2; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/v2/team%2Fapp/tags/list?n=5`);
      expect(response.status).toBe(200);
      expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      expect(await response.json()).toEqual({ name: 'team/app', n: '5', sameApp: true, linked: true });
    }
    const missing = await fetch(`http://127.0.0.1:${port}/nowhere`);
    expect(missing.status).toBe(404);
    expect(seen).toEqual(Array.from({ length: 3 }, () => ({ request: true, response: true })));
  });
});
