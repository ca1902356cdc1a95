import { MediaType } from '@meridian/oci';
import type { RouteHandlers } from './handler.js';
import { queryValue } from '../request.js';

/** distribution-spec v1.1 "Listing Referrers", with `artifactType` filtering and OCI-Filters-Applied. */
export const referrerHandlers: RouteHandlers = {
  async GET({ req, res, params, registry }) {
    const artifactType = queryValue(req, 'artifactType');
    const index = await registry.discovery.listReferrers(params.name, params.digest!, artifactType);
    if (artifactType !== undefined) res.setHeader('OCI-Filters-Applied', 'artifactType');
    const payload = JSON.stringify(index);
    res.status(200).setHeader('Content-Type', MediaType.OciIndex);
    res.setHeader('Content-Length', Buffer.byteLength(payload));
    res.end(payload);
  },
};
