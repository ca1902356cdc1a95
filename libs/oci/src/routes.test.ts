/**
 * The route table of distribution-spec v1.1 "Endpoints" (end-1 … end-13) plus Distribution's
 * `_catalog`, matched on raw paths.
 */
import { describe, expect, it } from 'vitest';
import { digestOf } from './digest.js';
import { ROUTES, ROUTES_BY_NAME, matchRoute, type RouteAction, type RouteName, type RouteParams } from './routes.js';

const DIGEST = digestOf('x');
const UPLOAD_ID = '3f2a1c5e-8b7d-4e6f-9a0b-1c2d3e4f5a6b';

function expectRoute(pathname: string, name: RouteName, params: RouteParams = {}): void {
  const match = matchRoute(pathname);
  expect(match, `${pathname} should match ${name}`).toBeDefined();
  expect(match!.route.name).toBe(name);
  expect(match!.params).toEqual(params);
}

describe('matchRoute', () => {
  // distribution-spec v1.1 "Determining support" (end-1): GET /v2/.
  it('matches the base route with and without the trailing slash (end-1)', () => {
    expectRoute('/v2/', 'base');
    expectRoute('/v2', 'base');
  });

  it('matches _catalog', () => {
    expectRoute('/v2/_catalog', 'catalog');
  });

  // distribution-spec v1.1 "Content discovery: listing tags" (end-8a).
  it('matches the tags list, including nested names (end-8a)', () => {
    expectRoute('/v2/ubuntu/tags/list', 'tags', { name: 'ubuntu' });
    expectRoute('/v2/library/ubuntu/tags/list', 'tags', { name: 'library/ubuntu' });
    expectRoute('/v2/a/b/c/d/tags/list', 'tags', { name: 'a/b/c/d' });
  });

  // distribution-spec v1.1 "Pulling manifests" (end-3) / "Pushing manifests" (end-7) / "Deleting manifests" (end-9).
  it('matches manifests by tag and by digest, including nested names (end-3, end-7, end-9)', () => {
    expectRoute('/v2/ubuntu/manifests/latest', 'manifest', { name: 'ubuntu', reference: 'latest' });
    expectRoute(`/v2/library/ubuntu/manifests/${DIGEST}`, 'manifest', { name: 'library/ubuntu', reference: DIGEST });
    expectRoute('/v2/a/b/c/manifests/v1.0', 'manifest', { name: 'a/b/c', reference: 'v1.0' });
  });

  // distribution-spec v1.1 "Pushing blobs" (end-4a, end-4b, end-11): POST /v2/<name>/blobs/uploads/.
  it('matches the upload POST with and without the trailing slash (end-4a, end-4b, end-11)', () => {
    expectRoute('/v2/ubuntu/blobs/uploads/', 'blob-upload', { name: 'ubuntu' });
    expectRoute('/v2/ubuntu/blobs/uploads', 'blob-upload', { name: 'ubuntu' });
    expectRoute('/v2/library/ubuntu/blobs/uploads/', 'blob-upload', { name: 'library/ubuntu' });
  });

  // distribution-spec v1.1 "Pushing blobs" (end-5 PATCH, end-6 PUT, end-13 GET status).
  it('matches an upload session (end-5, end-6, end-13)', () => {
    expectRoute(`/v2/ubuntu/blobs/uploads/${UPLOAD_ID}`, 'blob-upload-session', { name: 'ubuntu', uploadId: UPLOAD_ID });
    expectRoute(`/v2/a/b/blobs/uploads/${UPLOAD_ID}`, 'blob-upload-session', { name: 'a/b', uploadId: UPLOAD_ID });
  });

  // distribution-spec v1.1 "Pulling blobs" (end-2) / "Deleting blobs" (end-10).
  it('matches a blob, including nested names (end-2, end-10)', () => {
    expectRoute(`/v2/ubuntu/blobs/${DIGEST}`, 'blob', { name: 'ubuntu', digest: DIGEST });
    expectRoute(`/v2/library/ubuntu/blobs/${DIGEST}`, 'blob', { name: 'library/ubuntu', digest: DIGEST });
  });

  // distribution-spec v1.1 "Listing Referrers" (end-12a).
  it('matches referrers (end-12a)', () => {
    expectRoute(`/v2/ubuntu/referrers/${DIGEST}`, 'referrers', { name: 'ubuntu', digest: DIGEST });
    expectRoute(`/v2/a/b/referrers/${DIGEST}`, 'referrers', { name: 'a/b', digest: DIGEST });
  });

  it('resolves a name containing blobs/uploads parts to the upload routes, not the blob route', () => {
    expectRoute('/v2/foo/blobs/uploads/bar/blobs/uploads/', 'blob-upload', { name: 'foo/blobs/uploads/bar' });
    expectRoute('/v2/foo/blobs/uploads/bar/blobs/uploads', 'blob-upload', { name: 'foo/blobs/uploads/bar' });
    expectRoute(`/v2/foo/blobs/uploads/bar/blobs/uploads/${UPLOAD_ID}`, 'blob-upload-session', {
      name: 'foo/blobs/uploads/bar',
      uploadId: UPLOAD_ID,
    });
    expectRoute('/v2/blobs/blobs/uploads/', 'blob-upload', { name: 'blobs' });
    expectRoute(`/v2/blobs/uploads/blobs/${DIGEST}`, 'blob', { name: 'blobs/uploads', digest: DIGEST });
  });

  it('takes the last manifests/ segment as the reference', () => {
    expectRoute('/v2/manifests/manifests/latest', 'manifest', { name: 'manifests', reference: 'latest' });
  });

  it('does not match other API versions or prefixes', () => {
    expect(matchRoute('/v3/')).toBeUndefined();
    expect(matchRoute('/v3/ubuntu/manifests/latest')).toBeUndefined();
    expect(matchRoute('/v1/_ping')).toBeUndefined();
    expect(matchRoute('/v2x/')).toBeUndefined();
    expect(matchRoute('/v22/ubuntu/tags/list')).toBeUndefined();
    expect(matchRoute('/')).toBeUndefined();
    expect(matchRoute('')).toBeUndefined();
    expect(matchRoute('/api/v2/ubuntu/tags/list')).toBeUndefined();
  });

  it('does not match paths that fit no route', () => {
    expect(matchRoute('/v2/foo/bar')).toBeUndefined();
    expect(matchRoute('/v2/foo')).toBeUndefined();
    expect(matchRoute('/v2//')).toBeUndefined();
    expect(matchRoute('/v2/_catalog/')).toBeUndefined();
    expect(matchRoute('/v2/foo/manifests/')).toBeUndefined();
    expect(matchRoute('/v2/foo/manifests/latest/')).toBeUndefined();
    expect(matchRoute('/v2/foo/blobs/')).toBeUndefined();
    expect(matchRoute('/v2/foo/tags/list/')).toBeUndefined();
    expect(matchRoute('/v2/foo/referrers/')).toBeUndefined();
    expect(matchRoute('/v2/manifests/latest')).toBeUndefined();
    expect(matchRoute('/v2/tags/list')).toBeUndefined();
  });

  it('matches raw paths: encoded or dot segments reach the name grammar unchanged', () => {
    expectRoute('/v2/a%2Fb/manifests/latest', 'manifest', { name: 'a%2Fb', reference: 'latest' });
    expectRoute('/v2/../x/tags/list', 'tags', { name: '../x' });
  });
});

describe('ROUTES', () => {
  const examples: Record<RouteName, RouteParams> = {
    base: {},
    catalog: {},
    tags: { name: 'library/ubuntu' },
    manifest: { name: 'a/b/c', reference: 'v1' },
    'blob-upload-session': { name: 'library/ubuntu', uploadId: UPLOAD_ID },
    'blob-upload': { name: 'library/ubuntu' },
    blob: { name: 'x/y', digest: DIGEST },
    referrers: { name: 'x/y', digest: DIGEST },
  };

  it('has one entry per route name, indexed by ROUTES_BY_NAME', () => {
    const names = ROUTES.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    expect([...names].sort()).toEqual(Object.keys(examples).sort());
    for (const route of ROUTES) expect(ROUTES_BY_NAME[route.name]).toBe(route);
  });

  it.each(ROUTES.map((r) => [r.name, r] as const))('round-trips %s: path(params) matches back to the same route and params', (name, route) => {
    const params = examples[name];
    const path = route.path(params);
    const match = matchRoute(path);
    expect(match?.route.name).toBe(name);
    expect(match?.params).toEqual(params);
    for (const key of route.params) expect(params[key], `${name} example lacks ${key}`).toBeDefined();
  });

  it('maps every method to an action in {pull, push, delete, catalog, none}', () => {
    const allowed = new Set<RouteAction>(['pull', 'push', 'delete', 'catalog', 'none']);
    for (const route of ROUTES) {
      const methods = Object.entries(route.methods);
      expect(methods.length, `${route.name} has no methods`).toBeGreaterThan(0);
      for (const [method, action] of methods) {
        expect(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).toContain(method);
        expect(allowed.has(action), `${route.name} ${method} -> ${action}`).toBe(true);
      }
    }
  });

  // distribution-spec v1.1 "Endpoints": which method does what.
  it('requires the expected actions for the spec endpoints', () => {
    expect(ROUTES_BY_NAME.base.methods).toEqual({ GET: 'none', HEAD: 'none' });
    expect(ROUTES_BY_NAME.catalog.methods).toEqual({ GET: 'catalog' });
    expect(ROUTES_BY_NAME.tags.methods).toEqual({ GET: 'pull' });
    expect(ROUTES_BY_NAME.manifest.methods).toEqual({ GET: 'pull', HEAD: 'pull', PUT: 'push', DELETE: 'delete' });
    expect(ROUTES_BY_NAME['blob-upload'].methods).toEqual({ POST: 'push' });
    expect(ROUTES_BY_NAME['blob-upload-session'].methods).toEqual({ GET: 'push', PATCH: 'push', PUT: 'push', DELETE: 'push' });
    expect(ROUTES_BY_NAME.blob.methods).toEqual({ GET: 'pull', HEAD: 'pull', DELETE: 'delete' });
    expect(ROUTES_BY_NAME.referrers.methods).toEqual({ GET: 'pull' });
  });

  it('names the spec section of every route', () => {
    for (const route of ROUTES) expect(route.spec.length).toBeGreaterThan(0);
  });
});
