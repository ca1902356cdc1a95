import { digestOf, parseManifest } from '@meridian/oci';
import { grpc, type Clock } from '@meridian/proto';
import { ensureBlobs, type CopyContext } from './blob-copy.js';
import { hasStatus, PermanentError } from './grpc-errors.js';

/** Indexes nest (an index may list indexes); deeper than this is refused rather than followed. */
const MAX_INDEX_DEPTH = 8;

interface FetchedManifest {
  digest: string;
  mediaType: string;
  payload: Buffer;
  clock: Clock | null;
}

export type ManifestOutcome = { outcome: 'done'; bytes: number } | { outcome: 'superseded' };

/**
 * Brings a manifest (and the tag a `manifest.put` moved) to the target, after what it needs:
 * its child manifests first, recursively (an index's entries, with their blobs), then its blobs
 * (config and layers), then ApplyManifest with the write's clock, so the target's tag follows
 * the last writer. A subject is not needed: a referrer may arrive before what it refers to.
 *
 * `superseded` when no region has the manifest any more: it was deleted after this write, and
 * that delete is a change of its own.
 */
export async function replicateManifest(
  put: { repository: string; digest: string; tag?: string | undefined },
  clock: Clock,
  context: CopyContext,
): Promise<ManifestOutcome> {
  const { repository, digest } = put;
  // Held already (an earlier attempt, or another index's child): only the tag can be new.
  const manifest = (await targetManifest(repository, digest, context)) ?? (await fetchManifest(repository, digest, context));
  if (!manifest) return { outcome: 'superseded' };
  const bytes = await bringContents(repository, manifest, clock, 0, context);
  await context.target.applyManifest(
    { repository, digest, mediaType: manifest.mediaType, payload: manifest.payload, ...(put.tag ? { tag: put.tag } : {}), clock, blobsOnDemand: context.blobsOnDemand === true },
    context.signal,
  );
  return { outcome: 'done', bytes };
}

/**
 * Makes present on the target everything `manifest` names, children applied before it. Returns
 * the blob bytes sent. A child keeps the clock of its own write; `clock` (the change's) stands in
 * when a source sends none.
 */
async function bringContents(repository: string, manifest: FetchedManifest, clock: Clock, depth: number, context: CopyContext): Promise<number> {
  let parsed;
  try {
    parsed = parseManifest(manifest.payload, manifest.mediaType);
  } catch (err) {
    throw new PermanentError(`manifest ${manifest.digest} does not parse: ${(err as Error).message}`);
  }
  let bytes = 0;
  const children = [...new Set(parsed.manifestReferences.map((child) => child.digest))];
  if (children.length > 0 && depth >= MAX_INDEX_DEPTH) throw new PermanentError(`indexes nest deeper than ${MAX_INDEX_DEPTH} under ${manifest.digest}`);
  for (const childDigest of children) {
    if (await targetManifest(repository, childDigest, context)) continue;
    const child = await fetchManifest(repository, childDigest, context);
    if (!child) throw new Error(`${childDigest}, listed by ${manifest.digest}, is in no region`);
    bytes += await bringContents(repository, child, clock, depth + 1, context);
    const childClock = child.clock?.hlc ? child.clock : clock;
    await context.target.applyManifest(
      { repository, digest: childDigest, mediaType: child.mediaType, payload: child.payload, clock: childClock, blobsOnDemand: context.blobsOnDemand === true },
      context.signal,
    );
  }
  // An edge region takes the manifest with its blobs pending and fills them on demand.
  if (!context.blobsOnDemand) bytes += await ensureBlobs(repository, parsed.blobReferences, context);
  return bytes;
}

async function targetManifest(repository: string, digest: string, context: CopyContext): Promise<FetchedManifest | undefined> {
  try {
    const reply = await context.target.getManifest(repository, digest, context.signal);
    return { digest, mediaType: reply.mediaType, payload: reply.payload, clock: reply.clock };
  } catch (err) {
    if (hasStatus(err, grpc.status.NOT_FOUND)) return undefined;
    throw err;
  }
}

/**
 * The manifest from the first source that has it with the right bytes. Undefined when every
 * source answered NOT_FOUND; an error (retried) when some source could not say.
 */
async function fetchManifest(repository: string, digest: string, context: CopyContext): Promise<FetchedManifest | undefined> {
  const failures: string[] = [];
  let notFound = 0;
  for (const source of context.sources) {
    try {
      const reply = await source.getManifest(repository, digest, context.signal);
      if (digestOf(reply.payload) === digest) return { digest, mediaType: reply.mediaType, payload: reply.payload, clock: reply.clock };
      failures.push(`${source.name}: its bytes do not hash to the digest`);
    } catch (err) {
      context.signal.throwIfAborted();
      if (hasStatus(err, grpc.status.NOT_FOUND)) notFound++;
      else failures.push(`${source.name}: ${(err as Error).message}`);
    }
  }
  if (notFound > 0 && failures.length === 0) return undefined;
  throw new Error(`no region could serve manifest ${digest} of ${repository}: ${failures.join('; ') || 'no source region'}`);
}
