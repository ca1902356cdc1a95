import type { RouteHandlers } from './handler.js';
import { parseBlobRange } from '../request.js';

/**
 * distribution-spec v1.1 "Pulling blobs" (GET/HEAD, with Range: 206/416) and "Deleting blobs".
 */
export const blobHandlers: RouteHandlers = {
  async HEAD({ res, params, registry }) {
    const blob = await registry.blobs.describe(params.name, params.digest!);
    res.status(200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', blob.size);
    res.setHeader('Docker-Content-Digest', blob.digest.value);
    res.setHeader('Accept-Ranges', 'bytes');
    res.end();
  },

  async GET({ req, res, params, registry }) {
    const blob = await registry.blobs.describe(params.name, params.digest!);
    const range = parseBlobRange(req.headers.range, blob.size);
    const start = range?.start ?? 0;
    const end = range?.end ?? blob.size - 1;
    res.status(range ? 206 : 200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', blob.size === 0 ? 0 : end - start + 1);
    res.setHeader('Docker-Content-Digest', blob.digest.value);
    res.setHeader('Accept-Ranges', 'bytes');
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

  async DELETE({ res, params, registry }) {
    await registry.blobs.delete(params.name, params.digest!);
    res.status(202).setHeader('Content-Length', 0);
    res.end();
  },
};
