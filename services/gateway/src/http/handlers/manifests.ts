import { MAX_MANIFEST_BYTES } from '@meridian/oci';
import type { Request } from 'express';
import type { RouteHandlers, Handler } from './handler.js';
import { readBoundedBody } from '../request.js';
import { requestActor } from '../audit-trail.js';

/** distribution-spec v1.1 "Pulling manifests", "Pushing manifests", "Deleting manifests"/"Deleting tags". */
const getOrHead: Handler = async ({ req, res, params, registry }) => {
  const manifest = await registry.manifests.get(params.name, params.reference!, acceptHeaders(req));
  res.status(200);
  res.setHeader('Content-Type', manifest.mediaType);
  res.setHeader('Content-Length', manifest.payload.byteLength);
  res.setHeader('Docker-Content-Digest', manifest.digest);
  res.setHeader('ETag', `"${manifest.digest}"`);
  res.end(req.method === 'HEAD' ? undefined : manifest.payload);
};

export const manifestHandlers: RouteHandlers = {
  GET: getOrHead,
  HEAD: getOrHead,

  async PUT({ req, res, params, registry, access }) {
    const body = await readBoundedBody(req, MAX_MANIFEST_BYTES);
    const pushed = await registry.manifests.put(params.name, params.reference!, req.headers['content-type'], body, requestActor(req, access.identity));
    res.status(201);
    res.setHeader('Location', `/v2/${params.name}/manifests/${pushed.digest}`);
    res.setHeader('Docker-Content-Digest', pushed.digest);
    if (pushed.subject) res.setHeader('OCI-Subject', pushed.subject);
    res.setHeader('Content-Length', 0);
    res.end();
  },

  async DELETE({ req, res, params, registry, access }) {
    await registry.manifests.delete(params.name, params.reference!, requestActor(req, access.identity));
    res.status(202).setHeader('Content-Length', 0);
    res.end();
  },
};

function acceptHeaders(req: Request): string[] {
  const accept = req.headers.accept;
  return accept === undefined ? [] : [accept];
}
