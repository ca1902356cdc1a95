import { MediaType, parsePageRequest } from '@meridian/oci';
import type { RouteHandlers } from './handler.js';
import { queryValue } from '../request.js';
import { sendJson } from '../response.js';

/**
 * Descriptors per page. An index of this many stays far below the 4 MiB clients accept; `n`
 * (as for tags) may ask for fewer.
 */
export const MAX_REFERRERS_PAGE = 1000;

/**
 * distribution-spec v1.1 "Listing Referrers": an image index, filtered by `artifactType` (then
 * OCI-Filters-Applied says so), paged with `Link: <…>; rel="next"` when it does not fit one page.
 */
export const referrerHandlers: RouteHandlers = {
  async GET({ req, res, params, registry }) {
    const artifactType = queryValue(req, 'artifactType');
    const page = parsePageRequest(req.query.n, req.query.last, MAX_REFERRERS_PAGE);
    const result = await registry.discovery.listReferrers(params.name, params.digest!, {
      ...page,
      ...(artifactType !== undefined ? { artifactType } : {}),
    });
    if (artifactType !== undefined) res.setHeader('OCI-Filters-Applied', 'artifactType');
    if (result.nextAfter !== undefined) {
      const query = new URLSearchParams({ n: String(page.limit), last: result.nextAfter, ...(artifactType !== undefined ? { artifactType } : {}) });
      res.setHeader('Link', `</v2/${params.name}/referrers/${params.digest}?${query.toString()}>; rel="next"`);
    }
    sendJson(res, result.index, MediaType.OciIndex);
  },
};
