import { pipeline } from 'node:stream/promises';
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
    const body = blob.size === 0 ? undefined : await registry.blobs.open(blob, { start, end });
    res.status(range ? 206 : 200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', blob.size === 0 ? 0 : end - start + 1);
    res.setHeader('Docker-Content-Digest', blob.digest.value);
    res.setHeader('Accept-Ranges', 'bytes');
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${blob.size}`);
    if (!body) {
      res.end();
      return;
    }
    // A client that goes away mid-pull ends the pipeline with an error; nothing to answer then.
    await pipeline(body, res).catch((err: NodeJS.ErrnoException) => {
      if (!res.destroyed && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
    });
  },

  async DELETE({ res, params, registry }) {
    await registry.blobs.delete(params.name, params.digest!);
    res.status(202).setHeader('Content-Length', 0);
    res.end();
  },
};
