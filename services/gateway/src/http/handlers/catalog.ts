import { nextPageLink, parsePageRequest } from '@meridian/oci';
import type { RouteHandlers } from './handler.js';
import { sendJson } from '../response.js';

/** Distribution pages the catalog by 100 unless asked otherwise; we do the same. */
const DEFAULT_CATALOG_PAGE = 100;
const MAX_CATALOG_PAGE = 10_000;

/** GET /v2/_catalog, the listing extension every registry client knows (Distribution API "Catalog"). */
export const catalogHandlers: RouteHandlers = {
  async GET({ req, res, registry, access }) {
    const page = parsePageRequest(req.query.n ?? String(DEFAULT_CATALOG_PAGE), req.query.last, MAX_CATALOG_PAGE);
    const result = await registry.discovery.listRepositories(page, access.listsRepository);
    if (result.nextAfter !== undefined) res.setHeader('Link', nextPageLink('/v2/_catalog', page.limit, result.nextAfter));
    sendJson(res, { repositories: result.items });
  },
};
