import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/**
 * Stops an HTTP(S) server the way SIGTERM should: it takes no new connections, closes the idle
 * kept-alive ones at once and each busy one as soon as its request is answered, and cuts what is
 * still open after `graceMs`. Resolves when every connection is gone.
 *
 * `server.close()` alone closes only the connections idle at that moment: one busy then goes back
 * to waiting for its next request when answered, and holds the close open until the server's
 * keep-alive timeout (75 s in the control plane) ends it.
 */
export async function stopServing(server: Server, graceMs: number): Promise<void> {
  // A request that arrives on a kept-alive connection during the stop is answered with
  // `Connection: close`, so its client opens a new connection for the next one (to another
  // process) instead of sending it into a connection the sweep is about to close. (Responses to
  // requests already in flight when the stop began carry no such header: nothing public reaches
  // them, and the sweep closes their connections once answered.)
  server.prependListener('request', refuseKeepAlive);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  const grace = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(grace);
  }
}

function refuseKeepAlive(_request: IncomingMessage, response: ServerResponse): void {
  response.shouldKeepAlive = false;
}

/** How soon a connection whose request was just answered is closed during a stop. */
const IDLE_SWEEP_MS = 50;
