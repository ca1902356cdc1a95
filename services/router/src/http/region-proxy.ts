import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { MAX_MANIFEST_BYTES } from '@meridian/oci';
import { BLOB_REDIRECT_HEADER } from '@meridian/proto/cluster-http';
import type { RawDispatchHandler, RawDispatcher } from './pipelined-lanes.js';
import type { SlowClientBudget } from './slow-clients.js';

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

/**
 * A region's answer to a request on a pipelined connection that is larger than any answer sent
 * there may be (MAX_MANIFEST_BYTES): refused before its headers reach the client when its
 * `Content-Length` says so, else cut where it passes the limit.
 */
export class AnswerTooLargeError extends Error {
  override name = 'AnswerTooLargeError';
  constructor(readonly limit: number) {
    super(`the answer exceeds ${limit} bytes, the most a manifest may have`);
  }
}

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus what the router sets itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/**
 * Request headers not passed on: hop-by-hop ones; `host` (the region's own goes out); `expect`
 * (the router's server answered it already); `x-forwarded-for` (sent anew, with the client's
 * address appended); `x-forwarded-proto` and `x-forwarded-host`, which a gateway that trusts the
 * router would believe, as the scheme and host of its token endpoint's URL: they would describe
 * the router's address, not the region's, or be the client's own invention; and the blob-redirect
 * request, which only the router may make (a gateway that trusts the router would believe a
 * client's own).
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'host', 'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', BLOB_REDIRECT_HEADER]);

export interface ForwardOptions {
  /**
   * Turn a relative `Location` into an absolute URL at the region: an upload session lives in
   * the region that opened it, so its PATCH and PUT go straight there, not through the router.
   */
  absoluteLocation: boolean;
  /** The client's address, appended to X-Forwarded-For. */
  clientAddress: string | undefined;
  /** Ask the region to answer a blob GET with a redirect to itself rather than the bytes (BLOB_REDIRECT_HEADER). */
  blobRedirect?: boolean;
  /**
   * The answer is small and bounded (see RegionDispatchers.pipelined): the request may share a
   * pipelined connection to the region, and its answer is never held back for a slow client.
   */
  pipelined?: boolean;
}

/**
 * The router's connections to the regions. Both keep connections alive per region; they differ
 * in whether a connection carries several requests at once.
 */
export interface RegionDispatchers {
  /**
   * Pipelined (HTTP/1.1 pipelining, RFC 9112 §9.3.2): for requests without a body whose answers
   * are small and bounded (a manifest, at most MAX_MANIFEST_BYTES; the base endpoint's; any HEAD).
   * The region then reads several requests, and the router several answers, per read of a
   * socket: fewer system calls and event-loop turns per request on both sides. An answer on such
   * a connection waits for those ahead of it, so none may stall: a slow client's answer is taken
   * from the region all the same (see `ForwardOptions.pipelined`), within the process's budget
   * for slow clients (SlowClientBudget), and requests behind one the region is slow to answer are
   * sent again elsewhere (PipelinedLanes).
   */
  pipelined: RawDispatcher;
  /** One request at a time per connection: everything else (uploads, tag lists, the catalog, referrers). */
  exclusive: RawDispatcher;
}

/**
 * Sends a request on to a region and streams the answer back, both ways with backpressure: no
 * body is ever held whole (a paused client pauses the region's socket, a slow region pauses the
 * client's), except a pipelined answer, which is bounded and is taken from the region whatever
 * the client's pace (RegionDispatchers): one larger than MAX_MANIFEST_BYTES is refused
 * (AnswerTooLargeError), and what waits for slow clients is bounded by `slowClients`. Headers
 * pass unchanged but for hop-by-hop ones, a `Location` made absolute where asked, `Link` targets
 * at the region's own origin made relative (so paging goes on through the router), and
 * `Meridian-Region` naming the region that answered. `Authorization`, `WWW-Authenticate` and
 * `Docker-Content-Digest` are passed as sent, byte for byte.
 *
 * undici's dispatcher is used directly: per-origin keep-alive pools, connect and header
 * timeouts, and a handler that writes each chunk to the client as it comes, with no stream
 * objects in between. The handler takes undici's raw callbacks (`onHeaders` with the header
 * lines as buffers) rather than the controller form, which first parses every response's
 * headers into an object: the router only copies them on, and every proxied request pays for
 * that parse (undici 7 keeps both forms; the raw one is the one its own core calls).
 */
export class RegionProxy {
  /** Each region's origin, parsed once per base URL rather than for every answer with a `Link`. */
  private readonly origins = new Map<string, string>();

  constructor(
    private readonly dispatchers: RegionDispatchers,
    private readonly timeouts: { upstreamMs: number },
    private readonly slowClients: SlowClientBudget,
  ) {}

  /**
   * Calls `settled` once the whole answer has been written to the client (with no argument), or
   * when the region fails (refused, reset, timed out, cut off) with an UpstreamError: before
   * anything was sent to the client the caller may retry elsewhere (see `bodyTaken`) or answer
   * with an error; after, the client's connection has been destroyed already. A callback rather
   * than a promise: most of what clients ask goes through here, and a promise, its two resolving
   * functions and the caller's `await` were a share of each proxied request's cost.
   */
  forward(req: IncomingMessage, res: ServerResponse, region: ProxyTarget, options: ForwardOptions, settled: (err?: UpstreamError) => void): void {
    let regionOrigin = this.origins.get(region.http);
    if (regionOrigin === undefined) this.origins.set(region.http, (regionOrigin = new URL(region.http).origin));
    const body = carriesBody(req) ? new RequestBody(req) : undefined;
    const pipelined = options.pipelined === true && body === undefined;
    const relay = new AnswerRelay(req, res, region, regionOrigin, options.absoluteLocation, pipelined, body, this.slowClients, settled);
    (pipelined ? this.dispatchers.pipelined : this.dispatchers.exclusive).dispatch(
      {
        origin: region.http,
        path: req.url ?? '/',
        method: req.method as Dispatcher.HttpMethod,
        headers: requestHeaders(req, options),
        body: body?.stream ?? null,
        // undici closes a connection after every HEAD unless told otherwise, in case a server
        // sends a body it should not (nodejs/undici#258). Regions are Meridian gateways, which
        // never do; without this each proxied blob or manifest HEAD (clients send many) cost
        // the router and the region a new connection.
        reset: req.method === 'HEAD' ? false : undefined,
        // undici pipelines behind a request only once it is not `blocking` (every method but
        // HEAD is, by default, until its answer's headers are in).
        blocking: pipelined ? false : undefined,
        headersTimeout: this.timeouts.upstreamMs,
        bodyTimeout: this.timeouts.upstreamMs,
      },
      relay,
    );
  }
}

/**
 * One region's answer on its way to the client (RegionProxy.forward): undici's handler for the
 * request. A class rather than a handler object of closures: a proxied request then allocates one
 * object where it allocated a dozen functions.
 */
class AnswerRelay implements RawDispatchHandler {
  private answered = false;
  private settled = false;
  /** What has come of a pipelined answer so far, against MAX_MANIFEST_BYTES. */
  private received = 0;
  /**
   * The first piece of a pipelined answer's body, held until the next or the end: an answer that
   * comes in one piece (most manifests) then goes to the client with one call (`end`).
   */
  private first: Buffer | undefined;
  private abortUpstream: ((reason: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  /** Listens for the client leaving (not for a pipelined request, see the constructor). */
  private readonly clientGone: (() => void) | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly region: ProxyTarget,
    private readonly regionOrigin: string,
    private readonly absoluteLocation: boolean,
    private readonly pipelined: boolean,
    private readonly body: RequestBody | undefined,
    private readonly slowClients: SlowClientBudget,
    private readonly onSettled: (err?: UpstreamError) => void,
  ) {
    // The client left (or its connection was cut) before the answer was through: stop the
    // region's side too. Except for a pipelined request: undici stops one by closing its
    // connection and sending the requests pipelined with it again, one of them perhaps with its
    // answer half relayed to its own client already. Its answer is bounded: it is read to the
    // end and dropped.
    if (!pipelined) {
      this.clientGone = () => {
        if (!this.settled) this.abortUpstream?.(new Error('the client closed the connection'));
      };
      res.on('close', this.clientGone);
    }
  }

  onConnect(abort: (reason: Error) => void): void {
    this.abortUpstream = abort;
    if (this.res.destroyed && !this.pipelined) abort(new Error('the client closed the connection'));
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void, statusText: string): boolean {
    // 1xx: the client had its own 100 Continue from the router's server.
    if (statusCode < 200) return true;
    const res = this.res;
    if (this.pipelined && this.req.method !== 'HEAD' && declaredLength(rawHeaders) > MAX_MANIFEST_BYTES) {
      // The head of its connection (this answer is being read): stopping it costs no other
      // answer, and undici sends again the requests behind it on a new connection.
      this.abortUpstream?.(new AnswerTooLargeError(MAX_MANIFEST_BYTES));
      return true;
    }
    this.answered = true;
    this.resumeUpstream = resume;
    if (res.destroyed) return true;
    res.writeHead(statusCode, statusText || undefined, responseHeaders(rawHeaders, this.region, this.regionOrigin, this.absoluteLocation));
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.res;
    if (this.pipelined) {
      // A pipelined answer is bounded (RegionDispatchers.pipelined) and goes on being taken
      // from the region even when the client reads slowly: pausing the region's socket would
      // hold up every answer pipelined behind it, for other clients. What the client has not
      // taken counts against the process's budget for slow clients.
      this.received += chunk.length;
      if (this.received > MAX_MANIFEST_BYTES) {
        // Without a length, or with a wrong one: the client's connection is cut (onError),
        // so no part of it passes for the whole answer.
        this.abortUpstream?.(new AnswerTooLargeError(MAX_MANIFEST_BYTES));
        return true;
      }
      if (res.destroyed) return true;
      const first = this.first;
      if (first === undefined && this.received === chunk.length) {
        this.first = chunk;
        return true;
      }
      this.first = undefined;
      if (first !== undefined && !res.write(first)) this.slowClients.hold(res);
      if (!res.write(chunk)) this.slowClients.hold(res);
      return true;
    }
    if (res.destroyed || res.write(chunk)) return true;
    res.once('drain', () => this.resumeUpstream?.());
    return false;
  }

  onComplete(): void {
    const res = this.res;
    if (!res.destroyed) {
      const first = this.first;
      this.first = undefined;
      // As latin1 text, byte for byte the region's: Node joins text to the response's head and
      // sends both with one write, where a Buffer goes beside the head as a two-piece writev.
      res.end(first === undefined ? undefined : first.toString('latin1'), 'latin1');
      // What `write` would have said of it: the client's connection has taken too little yet.
      if (first !== undefined && res.writableLength >= res.writableHighWaterMark) this.slowClients.hold(res);
    }
    this.settle();
  }

  onError(err: Error): void {
    if (this.answered) this.res.destroy();
    this.settle(new UpstreamError(this.region.name, this.answered, this.body?.taken ?? false, err));
  }

  private settle(err?: UpstreamError): void {
    if (this.settled) return;
    this.settled = true;
    if (this.clientGone) this.res.off('close', this.clientGone);
    // A failure is handed on in a microtask, as a rejected promise was: the caller's retry or
    // error answer then runs outside the dispatcher's own callbacks (a lane's read loop).
    if (err) queueMicrotask(() => this.onSettled(err));
    else this.onSettled();
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

/** The answer's `Content-Length`, or -1 without one (chunked, or none). */
function declaredLength(raw: Array<Buffer | string>): number {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 14 && latin1(name).toLowerCase() === 'content-length') return Number(latin1(raw[i + 1]!));
  }
  return -1;
}

/** A header line's name or value as latin1 text: undici gives buffers, PipelinedLanes strings. */
function latin1(part: Buffer | string): string {
  return typeof part === 'string' ? part : part.toString('latin1');
}

/** Whether the request has a body to send on (RFC 9112 §6.3: a length above 0, or chunked). */
function carriesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function requestHeaders(req: IncomingMessage, { clientAddress, blobRedirect }: ForwardOptions): string[] {
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
  if (blobRedirect) out.push(BLOB_REDIRECT_HEADER, '1');
  return out;
}

/**
 * The region's header lines as the client gets them, as the flat `[name, value, ...]` list
 * `writeHead` takes: names lower-cased, values as latin1 (byte for byte what the region sent).
 */
function responseHeaders(raw: Array<Buffer | string>, region: ProxyTarget, regionOrigin: string, absoluteLocation: boolean): string[] {
  const out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!).toLowerCase();
    let value = latin1(raw[i + 1]!);
    if (name === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
    // The router names the region that answered itself, below.
    if (HOP_BY_HOP.has(name) || name === 'meridian-region') continue;
    if (name === 'location' && absoluteLocation && value.startsWith('/') && !value.startsWith('//')) value = `${region.http.replace(/\/+$/, '')}${value}`;
    else if (name === 'link') value = relativeLinks(value, regionOrigin);
    out.push(name, value);
  }
  const listed = connectionTokens(connection);
  out.push('meridian-region', region.name);
  if (listed === undefined) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!)) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

/**
 * `Link` targets at the region's own origin, made relative (RFC 8288 link values: `<URI>; params`),
 * so a client paging a tag list or the catalog asks the router for the next page too. Targets
 * elsewhere, and relative ones, stay as they are.
 */
export function relativeLinks(value: string, regionOrigin: string): string {
  return value.replace(/<([^>]*)>/g, (whole, target: string) => {
    if (!/^https?:\/\//i.test(target)) return whole;
    try {
      const url = new URL(target);
      return url.origin === regionOrigin ? `<${url.pathname}${url.search}>` : whole;
    } catch {
      return whole;
    }
  });
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
