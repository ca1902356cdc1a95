import type { Response } from 'express';
import type { RouteHandlers } from './handler.js';
import { parseBlobRange } from '../request.js';
import { requestActor } from '../audit-trail.js';

/**
 * distribution-spec v1.1 "Pulling blobs" (GET/HEAD, with Range: 206/416) and "Deleting blobs".
 */
export const blobHandlers: RouteHandlers = {
  async HEAD({ res, params, registry }) {
    const blob = await registry.blobs.describe(params.name, params.digest!);
    setBlobHeaders(res, 200, blob.digest.value, blob.size);
    res.end();
  },

  async GET({ req, res, params, registry, blobRedirects }) {
    const blob = await registry.blobs.describe(params.name, params.digest!);
    // Only a blob held here is redirected to: one read through from peers is served (and kept) as it comes.
    const location = blob.fromPeers ? undefined : blobRedirects(req, params.name, blob.digest.value);
    if (location !== undefined) {
      // A signed URL is good for a minute: no cache may keep the answer that names it.
      res.status(307).set({ Location: location, 'Cache-Control': 'no-store', 'Content-Length': '0' });
      res.end();
      return;
    }
    const range = parseBlobRange(req.headers.range, blob.size);
    const start = range?.start ?? 0;
    const end = range?.end ?? blob.size - 1;
    setBlobHeaders(res, range ? 206 : 200, blob.digest.value, blob.size === 0 ? 0 : end - start + 1);
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${blob.size}`);
    if (blob.size > 0) {
      // Headers go out with the first bytes, so a blob missing from the store is still a clean 404.
      try {
        await registry.blobs.send(blob, { start, end }, res);
      } catch (err) {
        // A client that went away mid-pull: nothing left to answer.
        if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || res.destroyed) return;
        throw err;
      }
    }
    res.end();
  },

  async DELETE({ req, res, params, registry, access }) {
    await registry.blobs.delete(params.name, params.digest!, requestActor(req, access.identity));
    res.status(202).setHeader('Content-Length', 0);
    res.end();
  },
};

/** What a blob HEAD and GET answer alike; `length` is the bytes this response carries. */
function setBlobHeaders(res: Response, status: 200 | 206, digest: string, length: number): void {
  res.status(status);
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Length', length);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Accept-Ranges', 'bytes');
}
