import { nextPageLink, parsePageRequest } from '@meridian/oci';
import type { RouteHandlers } from './handler.js';
import { sendJson } from '../response.js';

/** Tags per page when the client names no `n`, and the most it may ask for. */
export const MAX_TAGS_PAGE = 10_000;

/** distribution-spec v1.1 "Content discovery: listing tags", with `n`/`last` and `Link` paging. */
export const tagHandlers: RouteHandlers = {
  async GET({ req, res, params, registry }) {
    const page = parsePageRequest(req.query.n, req.query.last, MAX_TAGS_PAGE);
    const result = await registry.discovery.listTags(params.name, page);
    if (result.nextAfter !== undefined) res.setHeader('Link', nextPageLink(`/v2/${params.name}/tags/list`, page.limit, result.nextAfter));
    sendJson(res, { name: params.name, tags: result.items });
  },
};
