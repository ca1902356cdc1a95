import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { manifestAcceptHeader, type InMemoryBlob } from './fixtures.js';

/**
 * The few distribution-spec calls the bench makes, done the way real clients do them (see
 * `pushPatterns`) and checked enough that a registry answering wrongly fails the bench instead
 * of looking fast.
 */

/**
 * How a client sends a blob and the manifest that names it. Seen through a logging proxy in
 * front of Distribution on this machine (2026-12-02), pushing an image of a 4 MiB layer and a
 * config:
 *
 * - skopeo 1.9.3, podman 4.3.1 and buildah (containers/image 5.23): HEAD the blob (404), POST a
 *   session, PATCH the whole body to it (Content-Length, no Content-Range), then PUT
 *   `?digest=` with an empty body; the manifest is PUT without a HEAD. Every request carries
 *   `Connection: close`, so each one is a new TCP connection.
 * - containerd 1.6 (`ctr push`): HEAD the blob, POST, PUT the body with `?digest=`; HEAD the
 *   manifest, then PUT it. Connections are kept alive.
 * - docker (not runnable here, no daemon; from its registry client's source): HEAD, POST, PATCH
 *   the whole body with chunked transfer encoding, PUT `?digest=` with no body; kept alive.
 */
export interface PushPattern {
  /** HEAD each blob first, expecting 404 (the bench only pushes blobs the registry lacks). */
  headBlob: boolean;
  /** HEAD the manifest by tag before putting it, expecting 404. */
  headManifest: boolean;
  /** `put`: the body goes with the closing PUT. `patch`: in one PATCH, then an empty PUT. */
  body: 'put' | 'patch';
  /** Every request on a new connection (`Connection: close`), as containers/image does. */
  connectionPerRequest: boolean;
}

export const pushPatterns = {
  /** POST, then PUT with the body: the bench's first pattern, and the held-out runs' one. */
  'post-put': { headBlob: false, headManifest: false, body: 'put', connectionPerRequest: false },
  containerd: { headBlob: true, headManifest: true, body: 'put', connectionPerRequest: false },
  skopeo: { headBlob: true, headManifest: false, body: 'patch', connectionPerRequest: true },
} as const satisfies Record<string, PushPattern>;

export type PushPatternName = keyof typeof pushPatterns;

export class UnexpectedResponseError extends Error {
  constructor(method: string, url: string, status: number, body: string) {
    super(`${method} ${url}: HTTP ${status}${body ? `: ${body.slice(0, 500)}` : ''}`);
  }
}

/**
 * A blob to push: from memory when small, streamed from its file when large. With `tail`, the
 * last `tail.length` bytes of those are replaced by it (a fresh variant, see fixtures.ts).
 */
export interface PushableBlob {
  digest: string;
  size: number;
  bytes?: Buffer;
  path?: string;
  tail?: Buffer;
}

/** The request body for `blob`: its bytes, or its file streamed, with the tail swapped in. */
export function pushBody(blob: PushableBlob): Buffer | Readable {
  const headBytes = blob.size - (blob.tail?.length ?? 0);
  if (blob.bytes) return blob.tail ? Readable.from([blob.bytes.subarray(0, headBytes), blob.tail], { objectMode: false }) : blob.bytes;
  if (!blob.path) throw new Error(`blob ${blob.digest} has neither bytes nor a path`);
  if (!blob.tail) return createReadStream(blob.path, { highWaterMark: 2 ** 20 });
  const { path, tail } = blob;
  return Readable.from(
    (async function* () {
      yield* createReadStream(path, { highWaterMark: 2 ** 20, end: headBytes - 1 });
      yield tail;
    })(),
    { objectMode: false },
  );
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The target of a `Link: <url>; rel="next"` header (distribution-spec "Listing Tags"). */
export function nextLink(link: string | undefined, base: string): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part);
    if (match?.[1] !== undefined) return new URL(match[1], base);
  }
  return undefined;
}

/**
 * GETs `url` and counts the body bytes without keeping them: the stream API hands chunks to a
 * writable, skipping the intermediate Readable that `request` builds. Follows redirects, since a
 * registry may send blob GETs elsewhere.
 */
export async function downloadAndCount(dispatcher: Dispatcher, url: URL, expectedBytes: number, expectedDigest?: string): Promise<number> {
  for (let hops = 0; hops < 4; hops++) {
    let status = 0;
    let location: string | undefined;
    let bytes = 0;
    const errorChunks: Buffer[] = [];
    // Hashing costs the client CPU, so the timed pulls only count; a check outside the timing
    // passes the digest, so a server sending the right number of wrong bytes cannot look fast.
    const hash = expectedDigest ? createHash('sha256') : undefined;
    await dispatcher.stream({ origin: url.origin, path: url.pathname + url.search, method: 'GET' }, ({ statusCode, headers }) => {
      status = statusCode;
      location = headerValue(headers.location);
      return new Writable({
        write(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          hash?.update(chunk);
          if (status !== 200 && errorChunks.length < 4) errorChunks.push(chunk);
          callback();
        },
      });
    });
    if (status >= 300 && status < 400 && location) {
      url = new URL(location, url);
      continue;
    }
    if (status !== 200) throw new UnexpectedResponseError('GET', url.toString(), status, Buffer.concat(errorChunks).toString());
    if (bytes !== expectedBytes) throw new Error(`GET ${url}: got ${bytes} bytes, expected ${expectedBytes}`);
    if (hash && `sha256:${hash.digest('hex')}` !== expectedDigest) throw new Error(`GET ${url}: the bytes do not hash to ${expectedDigest}`);
    return bytes;
  }
  throw new Error(`GET ${url}: too many redirects`);
}

export interface TagWalk {
  tags: Set<string>;
  pages: number;
}

export class OciClient {
  private readonly pattern: PushPattern;
  /**
   * undici closes the connection after every HEAD (nodejs/undici#258), which a client keeping
   * its connections alive does not do: HEADs of such a pattern go through node:http instead.
   */
  private readonly headAgent: http.Agent | undefined;

  constructor(
    /** e.g. http://127.0.0.1:5000, no trailing slash */
    private readonly origin: string,
    private readonly dispatcher: Dispatcher,
    options: { pattern?: PushPatternName; connections?: number } = {},
  ) {
    this.pattern = pushPatterns[options.pattern ?? 'post-put'];
    if (!this.pattern.connectionPerRequest && (this.pattern.headBlob || this.pattern.headManifest)) {
      this.headAgent = new http.Agent({ keepAlive: true, maxSockets: options.connections ?? 8 });
    }
  }

  /** Closes the connections kept for HEADs; the dispatcher is the caller's. */
  close(): void {
    this.headAgent?.destroy();
  }

  private async send(
    method: Dispatcher.HttpMethod,
    url: URL,
    expected: number[],
    opts: { headers?: Record<string, string>; body?: Dispatcher.DispatchOptions['body'] } = {},
  ): Promise<Dispatcher.ResponseData> {
    const headers = this.pattern.connectionPerRequest ? { ...opts.headers, connection: 'close' } : opts.headers;
    const res = await this.dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers,
      body: opts.body,
    });
    if (!expected.includes(res.statusCode)) {
      const text = method === 'HEAD' ? '' : await res.body.text().catch(() => '');
      throw new UnexpectedResponseError(method, url.toString(), res.statusCode, text);
    }
    return res;
  }

  private url(pathAndQuery: string): URL {
    return new URL(pathAndQuery, this.origin);
  }

  /**
   * Pushes a blob through an upload session the way the client's pattern does (distribution-spec
   * "POST then PUT", or a single PATCH then an empty PUT), after a HEAD when the pattern makes
   * one.
   */
  async pushBlob(repo: string, blob: PushableBlob): Promise<void> {
    if (this.pattern.headBlob && (await this.exists(`/v2/${repo}/blobs/${blob.digest}`))) {
      throw new Error(`HEAD /v2/${repo}/blobs/${blob.digest}: 200 for a blob the bench has not pushed`);
    }
    const started = await this.send('POST', this.url(`/v2/${repo}/blobs/uploads/`), [202], { headers: { 'content-length': '0' } });
    await started.body.dump();
    let session = this.location(started, `POST /v2/${repo}/blobs/uploads/`);
    const blobHeaders = { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) };
    let body: Buffer | Readable | undefined = pushBody(blob);
    if (this.pattern.body === 'patch') {
      const patched = await this.send('PATCH', session, [202], { headers: blobHeaders, body });
      await patched.body.dump();
      session = this.location(patched, `PATCH ${session}`);
      body = undefined;
    }
    // Location may carry state in its query already; append the digest without re-encoding what
    // the registry wrote.
    const digestParam = `digest=${encodeURIComponent(blob.digest)}`;
    session.search = session.search ? `${session.search}&${digestParam}` : `?${digestParam}`;
    const done = await this.send('PUT', session, [201], {
      headers: body ? blobHeaders : { 'content-type': 'application/octet-stream', 'content-length': '0' },
      body,
    });
    await done.body.dump();
    const stored = headerValue(done.headers['docker-content-digest']);
    if (stored && stored !== blob.digest) throw new Error(`PUT ${session}: stored as ${stored}, pushed ${blob.digest}`);
  }

  /** An upload session's next URL: its Location, relative or absolute. */
  private location(res: Dispatcher.ResponseData, what: string): URL {
    const location = headerValue(res.headers.location);
    if (!location) throw new Error(`${what}: ${res.statusCode} without a Location`);
    return new URL(location, this.origin);
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    return this.exists(`/v2/${repo}/blobs/${digest}`);
  }

  /** HEAD: true on 200, false on 404; on a kept-alive connection when the pattern keeps them. */
  private async exists(pathname: string, headers: Record<string, string> = {}): Promise<boolean> {
    const url = this.url(pathname);
    if (!this.headAgent) {
      const res = await this.send('HEAD', url, [200, 404], { headers });
      await res.body.dump();
      return res.statusCode === 200;
    }
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(url, { method: 'HEAD', agent: this.headAgent, headers }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('error', reject);
      req.end();
    });
    if (status !== 200 && status !== 404) throw new UnexpectedResponseError('HEAD', url.toString(), status, '');
    return status === 200;
  }

  async pullBlob(repo: string, digest: string, size: number): Promise<number> {
    return downloadAndCount(this.dispatcher, this.url(`/v2/${repo}/blobs/${digest}`), size);
  }

  async putManifest(repo: string, reference: string, manifest: InMemoryBlob, mediaType: string): Promise<void> {
    if (this.pattern.headManifest && (await this.exists(`/v2/${repo}/manifests/${reference}`, { accept: mediaType }))) {
      throw new Error(`HEAD /v2/${repo}/manifests/${reference}: 200 for a tag the bench has not pushed`);
    }
    const res = await this.send('PUT', this.url(`/v2/${repo}/manifests/${reference}`), [201], {
      headers: { 'content-type': mediaType },
      body: manifest.bytes,
    });
    await res.body.dump();
  }

  async pushImage(repo: string, tag: string, image: { config: InMemoryBlob; layers: InMemoryBlob[]; manifest: InMemoryBlob }, mediaType: string): Promise<void> {
    for (const blob of [image.config, ...image.layers]) await this.pushBlob(repo, blob);
    await this.putManifest(repo, tag, image.manifest, mediaType);
  }

  /** GET by reference; checks the bytes hash to the digest the registry claims. */
  async getManifest(repo: string, reference: string): Promise<{ contentType: string; digest: string; bytes: Buffer }> {
    const res = await this.send('GET', this.url(`/v2/${repo}/manifests/${reference}`), [200], {
      headers: { accept: manifestAcceptHeader },
    });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const claimed = headerValue(res.headers['docker-content-digest']);
    if (claimed && claimed !== digest) throw new Error(`GET manifest ${repo}:${reference}: body hashes to ${digest}, header says ${claimed}`);
    return { contentType: headerValue(res.headers['content-type']) ?? '', digest, bytes };
  }

  /** Lists every tag of `repo`, `pageSize` at a time, following `Link: rel="next"` to the end. */
  async walkTags(repo: string, pageSize: number): Promise<TagWalk> {
    const tags = new Set<string>();
    let pages = 0;
    let next: URL | undefined = this.url(`/v2/${repo}/tags/list?n=${pageSize}`);
    while (next) {
      const res = await this.send('GET', next, [200]);
      const page = (await res.body.json()) as { tags?: string[] | null };
      for (const tag of page.tags ?? []) tags.add(tag);
      pages++;
      if (pages > 100_000) throw new Error(`tag walk of ${repo} did not end`);
      next = nextLink(headerValue(res.headers.link), next.toString());
    }
    return { tags, pages };
  }
}
