import type { RequestHandler } from 'express';
import { DeniedError } from '@meridian/oci';
import { IDENTITY_API_PATHS } from '@meridian/auth/http';

/**
 * A region of a cluster holds a copy of the control plane's identities, replaced at every sync:
 * a change made here would be lost. Its identity admin API answers DENIED, naming where
 * identities are managed.
 */
export function refuseIdentityChanges(controlPlaneUrl: string): RequestHandler {
  return (req, _res, next) => {
    if (!IDENTITY_API_PATHS.some((path) => req.path === path || req.path.startsWith(`${path}/`))) return next();
    next(new DeniedError(`this region is part of a cluster: its identities are managed by the control plane (--server ${controlPlaneUrl})`));
  };
}
