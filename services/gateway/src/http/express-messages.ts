import http from 'node:http';
import type { Socket } from 'node:net';
import type express from 'express';

/**
 * Server options that build each request and response with express's prototypes from the start.
 * express 5 otherwise calls `Object.setPrototypeOf` on both objects of every request, which
 * throws away V8's shapes for them. Measured here, one process answering `{}`: express about
 * 17k requests/s, express with these options about 60k, raw node:http about 97k. Express still
 * handles every request; its own `setPrototypeOf` becomes a no-op because the prototype is
 * already the one it sets. If Node ever makes the constructors classes, this returns no
 * options and express works as before, only slower (express-messages.test.ts then fails, to
 * say so).
 */
export function expressBuiltMessages(app: express.Express): http.ServerOptions {
  // Node 20 defines both as plain constructor functions, so they can be called on an object
  // made by `new` of a function whose prototype is express's. (Reflect.construct would work
  // with classes too, but V8 builds its objects in a slow mode: measured, it halves throughput.)
  const callable = [http.IncomingMessage, http.ServerResponse].every(
    (constructor) => !Function.prototype.toString.call(constructor).startsWith('class'),
  );
  if (!callable) return {};
  function ExpressRequest(this: http.IncomingMessage, socket: Socket) {
    http.IncomingMessage.call(this, socket);
  }
  ExpressRequest.prototype = app.request;
  function ExpressResponse(this: http.ServerResponse, req: http.IncomingMessage, options: unknown) {
    (http.ServerResponse as unknown as (req: unknown, options: unknown) => void).call(this, req, options);
  }
  ExpressResponse.prototype = app.response;
  return {
    IncomingMessage: ExpressRequest as unknown as typeof http.IncomingMessage,
    ServerResponse: ExpressResponse as unknown as typeof http.ServerResponse,
  };
}
