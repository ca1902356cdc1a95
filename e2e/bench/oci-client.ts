import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { manifestAcceptHeader, type InMemoryBlob } from './fixtures.js';

/**
 * The few distribution-spec calls the bench makes, done the way docker does them and checked
 * enough that a registry answering wrongly fails the bench instead of looking fast.
 */

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
  constructor(
    /** e.g. http://127.0.0.1:5000, no trailing slash */
    private readonly origin: string,
    private readonly dispatcher: Dispatcher,
  ) {}

  private async send(
    method: Dispatcher.HttpMethod,
    url: URL,
    expected: number[],
    opts: { headers?: Record<string, string>; body?: Dispatcher.DispatchOptions['body'] } = {},
  ): Promise<Dispatcher.ResponseData> {
    const res = await this.dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers: opts.headers,
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
   * Monolithic push through an upload session, as docker does it: POST to open the session,
   * then PUT the whole body to its Location with `?digest=` (distribution-spec "POST then PUT").
   */
  async pushBlob(repo: string, blob: PushableBlob): Promise<void> {
    const started = await this.send('POST', this.url(`/v2/${repo}/blobs/uploads/`), [202]);
    await started.body.dump();
    const location = headerValue(started.headers.location);
    if (!location) throw new Error(`POST /v2/${repo}/blobs/uploads/: 202 without a Location`);
    // Location may be relative or absolute and may carry state in its query already; append
    // the digest without re-encoding what the registry wrote.
    const session = new URL(location, this.origin);
    const digestParam = `digest=${encodeURIComponent(blob.digest)}`;
    session.search = session.search ? `${session.search}&${digestParam}` : `?${digestParam}`;
    const body = pushBody(blob);
    const done = await this.send('PUT', session, [201], {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body,
    });
    await done.body.dump();
    const stored = headerValue(done.headers['docker-content-digest']);
    if (stored && stored !== blob.digest) throw new Error(`PUT ${session}: stored as ${stored}, pushed ${blob.digest}`);
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    const res = await this.send('HEAD', this.url(`/v2/${repo}/blobs/${digest}`), [200, 404]);
    await res.body.dump();
    return res.statusCode === 200;
  }

  async pullBlob(repo: string, digest: string, size: number): Promise<number> {
    return downloadAndCount(this.dispatcher, this.url(`/v2/${repo}/blobs/${digest}`), size);
  }

  async putManifest(repo: string, reference: string, manifest: InMemoryBlob, mediaType: string): Promise<void> {
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
