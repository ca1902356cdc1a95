/**
 * The distribution-spec v1.1 endpoints as data (CONTRIBUTING.md, 'Naming'; Distribution's
 * registry/api/v2/routes.go). One table feeds the gateway's router, its metrics labels, the
 * auth guard (each method's required action) and the test client. Paths are matched raw, before
 * percent-decoding, so `%2F` or `..` in a name can never reach storage: they fail the name grammar.
 */

/** What a request does to a repository; the planned access guard (identity and tokens) checks it. */
export type RouteAction = 'pull' | 'push' | 'delete' | 'catalog' | 'none';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type RouteName =
  | 'base'
  | 'catalog'
  | 'tags'
  | 'manifest'
  | 'blob-upload-session'
  | 'blob-upload'
  | 'blob'
  | 'referrers';

export interface RouteParams {
  name?: string;
  reference?: string;
  digest?: string;
  uploadId?: string;
}

export interface RouteDefinition {
  name: RouteName;
  /** Spec section the route implements, for docs and error detail. */
  spec: string;
  pattern: RegExp;
  params: readonly (keyof RouteParams)[];
  methods: Partial<Record<HttpMethod, RouteAction>>;
  /** Builds the path for a client (tests, the replica protocol later). */
  path(params: RouteParams): string;
}

// Order matters: upload routes come before the blob route, whose name capture is greedy.
export const ROUTES: readonly RouteDefinition[] = [
  {
    name: 'base',
    spec: 'distribution-spec v1.1 "Determining support"',
    pattern: /^\/v2\/?$/,
    params: [],
    methods: { GET: 'none', HEAD: 'none' },
    path: () => '/v2/',
  },
  {
    name: 'catalog',
    spec: 'Distribution registry API "Listing Repositories" (_catalog)',
    pattern: /^\/v2\/_catalog$/,
    params: [],
    methods: { GET: 'catalog' },
    path: () => '/v2/_catalog',
  },
  {
    name: 'tags',
    spec: 'distribution-spec v1.1 "Content discovery: listing tags"',
    pattern: /^\/v2\/(.+)\/tags\/list$/,
    params: ['name'],
    methods: { GET: 'pull' },
    path: (p) => `/v2/${p.name}/tags/list`,
  },
  {
    name: 'manifest',
    spec: 'distribution-spec v1.1 "Pulling manifests" / "Pushing manifests" / "Deleting manifests"',
    pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    params: ['name', 'reference'],
    methods: { GET: 'pull', HEAD: 'pull', PUT: 'push', DELETE: 'delete' },
    path: (p) => `/v2/${p.name}/manifests/${p.reference}`,
  },
  {
    name: 'blob-upload-session',
    spec: 'distribution-spec v1.1 "Pushing blobs" (chunked upload, status, cancel)',
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    params: ['name', 'uploadId'],
    methods: { GET: 'push', PATCH: 'push', PUT: 'push', DELETE: 'push' },
    path: (p) => `/v2/${p.name}/blobs/uploads/${p.uploadId}`,
  },
  {
    name: 'blob-upload',
    spec: 'distribution-spec v1.1 "Pushing blobs" (POST, monolithic, mount)',
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/,
    params: ['name'],
    methods: { POST: 'push' },
    path: (p) => `/v2/${p.name}/blobs/uploads/`,
  },
  {
    name: 'blob',
    spec: 'distribution-spec v1.1 "Pulling blobs" / "Deleting blobs"',
    pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
    params: ['name', 'digest'],
    methods: { GET: 'pull', HEAD: 'pull', DELETE: 'delete' },
    path: (p) => `/v2/${p.name}/blobs/${p.digest}`,
  },
  {
    name: 'referrers',
    spec: 'distribution-spec v1.1 "Listing Referrers"',
    pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/,
    params: ['name', 'digest'],
    methods: { GET: 'pull' },
    path: (p) => `/v2/${p.name}/referrers/${p.digest}`,
  },
];

export const ROUTES_BY_NAME = Object.fromEntries(ROUTES.map((r) => [r.name, r])) as Record<RouteName, RouteDefinition>;

export interface RouteMatch {
  route: RouteDefinition;
  params: RouteParams;
}

/** Matches a raw request path (no query string) against the table; undefined when none fits. */
export function matchRoute(pathname: string): RouteMatch | undefined {
  if (!pathname.startsWith('/v2')) return undefined;
  for (const route of ROUTES) {
    const match = route.pattern.exec(pathname);
    if (!match) continue;
    const params: RouteParams = {};
    route.params.forEach((key, i) => (params[key] = match[i + 1]));
    return { route, params };
  }
  return undefined;
}
