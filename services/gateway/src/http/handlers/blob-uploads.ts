import type { Response } from 'express';
import type { RouteHandlers } from './handler.js';
import type { UploadSession } from '@meridian/registry';
import { contentLength, hasBody, parseChunkRange, queryValue } from '../request.js';

/**
 * distribution-spec v1.1 "Pushing blobs": POST (session, monolithic `?digest=`, mount
 * `?mount=&from=`), PATCH chunks, PUT `?digest=` to close, GET status, DELETE to cancel.
 */
export const blobUploadHandlers: RouteHandlers = {
  async POST({ req, res, params, registry, access }) {
    const digest = queryValue(req, 'digest');
    const mount = queryValue(req, 'mount');
    if (mount !== undefined) {
      const from = queryValue(req, 'from');
      // A mount from where the client may not read falls back to an upload, as any mount that
      // cannot be made does ("Mounting a blob": 202): it must not reveal what the source holds.
      const mounted = access.mayMountFrom(from) ? await registry.uploads.mount(params.name, mount, from) : undefined;
      if (mounted) return sendCreated(res, params.name, mounted.digest);
    } else if (digest !== undefined) {
      const stored = await registry.uploads.putMonolithic(params.name, digest, req, contentLength(req));
      return sendCreated(res, params.name, stored.digest);
    }
    sendSession(res, 202, registry.uploads.start(params.name));
  },
};

export const blobUploadSessionHandlers: RouteHandlers = {
  async GET({ req, res, params, registry }) {
    const state = registry.uploads.resume(params.name, params.uploadId!, queryValue(req, '_state'));
    sendSession(res, 204, await registry.uploads.status(state));
  },

  async PATCH({ req, res, params, registry }) {
    const state = registry.uploads.resume(params.name, params.uploadId!, queryValue(req, '_state'));
    const range = parseChunkRange(req.headers['content-range']);
    const length = contentLength(req);
    const session = await registry.uploads.append(state, req, {
      ...(range ? { start: range.start, length: range.length } : {}),
      ...(length !== undefined && !range ? { length } : {}),
    });
    sendSession(res, 202, session);
  },

  async PUT({ req, res, params, registry }) {
    const state = registry.uploads.resume(params.name, params.uploadId!, queryValue(req, '_state'));
    const range = parseChunkRange(req.headers['content-range']);
    const lastChunk = hasBody(req)
      ? { body: req, options: range ? { start: range.start, length: range.length } : {} }
      : undefined;
    const stored = await registry.uploads.complete(state, queryValue(req, 'digest'), lastChunk);
    sendCreated(res, params.name, stored.digest);
  },

  async DELETE({ req, res, params, registry }) {
    const state = registry.uploads.resume(params.name, params.uploadId!, queryValue(req, '_state'));
    await registry.uploads.cancel(state);
    res.status(204).end();
  },
};

function sendCreated(res: Response, name: string, digest: string): void {
  res.status(201);
  res.setHeader('Location', `/v2/${name}/blobs/${digest}`);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Content-Length', 0);
  res.end();
}

function sendSession(res: Response, status: 202 | 204, session: UploadSession): void {
  res.status(status);
  res.setHeader('Location', `/v2/${session.state.repository}/blobs/uploads/${session.state.id}?_state=${session.token}`);
  // The last byte held, inclusive; "0-0" for an empty session, as Distribution answers.
  res.setHeader('Range', `0-${Math.max(0, session.size - 1)}`);
  res.setHeader('Docker-Upload-UUID', session.state.id);
  if (status === 202) res.setHeader('Content-Length', 0);
  res.end();
}
