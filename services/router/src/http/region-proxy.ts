import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** Where a request is proxied to: a region's name and its gateway's base URL. */
export interface ProxyTarget {
  name: string;
  http: string;
}

/**
 * A proxied request that failed. `answered` says whether the client had already been sent the
 * region's status and headers (then its connection has been cut: nothing else can be said);
 * `bodyTaken` whether any of the request body had started on its way to the region (then the
 * request cannot be sent anywhere again).
 */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly region: string,
    readonly answered: boolean,
    readonly bodyTaken: boolean,
    cause: unknown,
  ) {
    super(`region ${region} failed ${answered ? 'while answering' : 'before answering'}: ${describeCause(cause)}`, { cause });
  }
}

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus what the router sets itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** Request headers not passed on: hop-by-hop ones; `host` (the region's own goes out); `expect` (the router's server answered it already). */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'host', 'expect', 'x-forwarded-for']);

export interface ForwardOptions {
  /**
   * Turn a relative `Location` into an absolute URL at the region: an upload session lives in
   * the region that opened it, so its PATCH and PUT go straight there, not through the router.
   */
  absoluteLocation: boolean;
  /** The client's address, appended to X-Forwarded-For. */
  clientAddress: string | undefined;
}

/**
 * Sends a request on to a region and streams the answer back, both ways with backpressure: no
 * body is ever held whole (a paused client pauses the region's socket, a slow region pauses the
 * client's). Headers pass unchanged but for hop-by-hop ones, a `Location` made absolute where
 * asked, `Link` targets at the region's own origin made relative (so paging goes on through the
 * router), and `Meridian-Region` naming the region that answered. `WWW-Authenticate` and
 * `Docker-Content-Digest` are passed as the region sent them.
 *
 * undici's dispatcher is used directly: per-origin keep-alive pools, connect and header
 * timeouts, and a handler that writes each chunk to the client as it comes, with no stream
 * objects in between.
 */
export class RegionProxy {
  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly timeouts: { upstreamMs: number },
  ) {}

  /**
   * Resolves once the whole answer has been written to the client. Rejects with UpstreamError
   * when the region fails (refused, reset, timed out, cut off): before anything was sent to the
   * client the caller may retry elsewhere (see `bodyTaken`) or answer with an error; after, the
   * client's connection has been destroyed already.
   */
  forward(req: IncomingMessage, res: ServerResponse, region: ProxyTarget, options: ForwardOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const body = carriesBody(req) ? new RequestBody(req) : undefined;
      let answered = false;
      let settled = false;
      let controller: Dispatcher.DispatchController | undefined;
      const settle = (err?: UpstreamError) => {
        if (settled) return;
        settled = true;
        res.off('close', clientGone);
        if (err) reject(err);
        else resolve();
      };
      // The client left (or its connection was cut) before the answer was through: stop the region's side too.
      const clientGone = () => {
        if (!settled) controller?.abort(new Error('the client closed the connection'));
      };
      res.on('close', clientGone);

      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          if (res.destroyed) c.abort(new Error('the client closed the connection'));
        },
        onResponseStart(_c, statusCode, headers, statusMessage) {
          // 1xx: the client had its own 100 Continue from the router's server.
          if (statusCode < 200) return;
          answered = true;
          res.writeHead(statusCode, statusMessage, responseHeaders(headers, region, options.absoluteLocation));
        },
        onResponseData(c, chunk) {
          if (!res.write(chunk)) {
            c.pause();
            res.once('drain', () => c.resume());
          }
        },
        onResponseEnd() {
          res.end();
          settle();
        },
        onResponseError(_c, err) {
          if (answered) res.destroy();
          settle(new UpstreamError(region.name, answered, body?.taken ?? false, err));
        },
      };

      this.dispatcher.dispatch(
        {
          origin: region.http,
          path: req.url ?? '/',
          method: req.method as Dispatcher.HttpMethod,
          headers: requestHeaders(req, options.clientAddress),
          body: body?.stream ?? null,
          headersTimeout: this.timeouts.upstreamMs,
          bodyTimeout: this.timeouts.upstreamMs,
        },
        handler,
      );
    });
  }
}

/**
 * The client's request body as undici reads it, recording whether any of it was asked for. It
 * reads the request without ever destroying it: when undici gives up on a region it destroys the
 * body it was given, and that must not cut the client's connection, which may still be answered
 * by the next region or with an error.
 */
class RequestBody {
  taken = false;
  readonly stream: Readable;

  constructor(req: IncomingMessage) {
    this.stream = Readable.from(this.chunks(req), { objectMode: false, highWaterMark: 64 * 1024 });
    // A failure of the body (the client gone mid-upload) reaches undici, which fails the request
    // with it; once undici has let go of the stream, a late error must not go unhandled.
    this.stream.on('error', () => undefined);
  }

  private async *chunks(req: IncomingMessage): AsyncGenerator<Buffer> {
    this.taken = true;
    for await (const chunk of req.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
  }
}

/** Whether the request has a body to send on (RFC 9112 §6.3: a length above 0, or chunked). */
function carriesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function requestHeaders(req: IncomingMessage, clientAddress: string | undefined): string[] {
  const raw = req.rawHeaders;
  const listed = connectionTokens(req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (NOT_FORWARDED.has(name) || listed?.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  if (clientAddress !== undefined) {
    const prior = req.headers['x-forwarded-for'];
    out.push('x-forwarded-for', prior ? `${prior}, ${clientAddress}` : clientAddress);
  }
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders, region: ProxyTarget, absoluteLocation: boolean): OutgoingHttpHeaders {
  const listed = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  const location = headers.location;
  if (absoluteLocation && typeof location === 'string' && location.startsWith('/') && !location.startsWith('//')) {
    out.location = `${region.http.replace(/\/+$/, '')}${location}`;
  }
  if (headers.link !== undefined) out.link = relativeLinks(headers.link, new URL(region.http).origin);
  out['meridian-region'] = region.name;
  return out;
}

/**
 * `Link` targets at the region's own origin, made relative (RFC 8288 link values: `<URI>; params`),
 * so a client paging a tag list or the catalog asks the router for the next page too. Targets
 * elsewhere, and relative ones, stay as they are.
 */
export function relativeLinks(value: string | string[], regionOrigin: string): string | string[] {
  const rewrite = (text: string) =>
    text.replace(/<([^>]*)>/g, (whole, target: string) => {
      if (!/^https?:\/\//i.test(target)) return whole;
      try {
        const url = new URL(target);
        return url.origin === regionOrigin ? `<${url.pathname}${url.search}>` : whole;
      } catch {
        return whole;
      }
    });
  return Array.isArray(value) ? value.map(rewrite) : rewrite(value);
}

/** Header names a `Connection` header lists: hop-by-hop for this connection only (RFC 9110 §7.6.1). */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  if (text === 'keep-alive' || text === 'close') return undefined;
  return new Set(text.split(',').map((token) => token.trim().toLowerCase()));
}

function describeCause(cause: unknown): string {
  const error = cause as (Error & { code?: string }) | undefined;
  return error?.code ?? error?.message ?? String(cause);
}
