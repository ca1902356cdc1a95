import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '@meridian/oci';
import { buildImage, errorCodes, type OciTestClient } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from '../../testing/test-gateway.js';

let harness: TestGateway;
let client: OciTestClient;

beforeAll(async () => {
  harness = await startTestGateway();
  client = harness.client;
});
afterAll(async () => harness?.close());

async function tagsPage(path: string): Promise<{ tags: string[]; next?: string; status: number }> {
  const response = await client.fetch(path);
  const body = (await response.json()) as { name: string; tags: string[] };
  const link = response.headers.get('link');
  const next = link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
  return { tags: body.tags, status: response.status, ...(next ? { next } : {}) };
}

const compare = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

describe('content discovery', () => {
  // "the tags MUST be in lexical order (i.e. case-insensitive alphanumeric order)"; tags that
  // differ only in case keep a fixed order between them (byte order), so paging is exact.
  it('lists tags in lexical, case-insensitive order and pages with n, last and Link ("Content discovery: listing tags")', async () => {
    const image = await client.pushImage('lib/tags', 'a');
    const names = ['b', 'B', '1.0', '1.10', '1.9', 'latest', 'z_last', 'a-b', 'Beta', 'alpha', 'Charlie', 'ZZ', 'c'];
    for (const tag of names) expect((await client.pushManifest('lib/tags', tag, image.manifestBytes)).status).toBe(201);
    const lexical = (x: string, y: string) => compare(x.toLowerCase(), y.toLowerCase()) || compare(x, y);
    const all = [...names, 'a'].sort(lexical);
    expect(all).toEqual(['1.0', '1.10', '1.9', 'a', 'a-b', 'alpha', 'B', 'b', 'Beta', 'c', 'Charlie', 'latest', 'z_last', 'ZZ']);

    const whole = await tagsPage(client.url('tags', { name: 'lib/tags' }).replace(client.baseUrl, ''));
    expect(whole.tags).toEqual(all);
    expect(whole.next).toBeUndefined();

    const seen: string[] = [];
    let next: string | undefined = '/v2/lib/tags/tags/list?n=4';
    let pages = 0;
    while (next) {
      const page = await tagsPage(next);
      expect(page.tags.length).toBeLessThanOrEqual(4);
      seen.push(...page.tags);
      next = page.next;
      pages++;
    }
    expect(seen).toEqual(all);
    expect(pages).toBe(4);

    const afterLast = await tagsPage('/v2/lib/tags/tags/list?n=2&last=b');
    expect(afterLast.tags).toEqual(['Beta', 'c']);
    const afterUpper = await tagsPage('/v2/lib/tags/tags/list?n=2&last=B');
    expect(afterUpper.tags).toEqual(['b', 'Beta']);
    const zero = await tagsPage('/v2/lib/tags/tags/list?n=0');
    expect(zero.tags).toEqual([]);
  });

  it('tags of an unknown repository are NAME_UNKNOWN; a bad n is refused ("Content discovery: listing tags", "Error codes")', async () => {
    const unknown = await client.fetch('/v2/lib/none/tags/list');
    expect(unknown.status).toBe(404);
    expect(await errorCodes(unknown)).toEqual(['NAME_UNKNOWN']);
    await client.pushImage('lib/badn', 'v1');
    const bad = await client.fetch('/v2/lib/badn/tags/list?n=-1');
    expect(bad.status).toBe(400);
  });

  it('the catalog lists repositories in order and pages with Link (Docker Registry HTTP API V2 "Catalog", an extension v1.1 leaves open)', async () => {
    for (const name of ['cat/c', 'cat/a', 'cat/b']) await client.pushImage(name, 'v1');
    const seen: string[] = [];
    let next: string | undefined = '/v2/_catalog?n=2';
    while (next) {
      const response = await client.fetch(next);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { repositories: string[] };
      expect(body.repositories.length).toBeLessThanOrEqual(2);
      seen.push(...body.repositories);
      const link = response.headers.get('link');
      next = link ? /^<([^>]+)>/.exec(link)?.[1] : undefined;
    }
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(['cat/a', 'cat/b', 'cat/c']));
  });

  it('lists referrers of a subject, filters by artifactType and says so in OCI-Filters-Applied ("Listing Referrers")', async () => {
    const subject = await client.pushImage('ref/app', 'v1');
    const subjectDescriptor = { mediaType: MediaType.OciManifest, digest: subject.digest, size: subject.manifestBytes.length };
    const signature = buildImage({ configMediaType: MediaType.OciEmpty, artifactType: 'application/vnd.example.sig', layers: 1, subject: subjectDescriptor, annotations: { 'org.example.signer': 'ci' } });
    const sbom = buildImage({ configMediaType: 'application/vnd.example.sbom.config+json', layers: 1, subject: subjectDescriptor });
    for (const artifact of [signature, sbom]) {
      for (const blob of [artifact.config, ...artifact.layers]) await client.pushBlob('ref/app', blob.bytes);
      expect((await client.pushManifest('ref/app', artifact.digest, artifact.manifestBytes)).status).toBe(201);
    }

    const all = await client.fetch(client.url('referrers', { name: 'ref/app', digest: subject.digest }));
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe(MediaType.OciIndex);
    expect(all.headers.get('oci-filters-applied')).toBeNull();
    const index = (await all.json()) as { schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> };
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(MediaType.OciIndex);
    expect(index.manifests).toHaveLength(2);
    expect(index.manifests).toEqual(
      expect.arrayContaining([
        { mediaType: MediaType.OciManifest, digest: signature.digest, size: signature.manifestBytes.length, artifactType: 'application/vnd.example.sig', annotations: { 'org.example.signer': 'ci' } },
        // Without artifactType, an image manifest's config media type is reported.
        { mediaType: MediaType.OciManifest, digest: sbom.digest, size: sbom.manifestBytes.length, artifactType: 'application/vnd.example.sbom.config+json' },
      ]),
    );

    const filtered = await client.fetch(client.url('referrers', { name: 'ref/app', digest: subject.digest }, { artifactType: 'application/vnd.example.sig' }));
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    const filteredIndex = (await filtered.json()) as { manifests: Array<{ digest: string }> };
    expect(filteredIndex.manifests.map((m) => m.digest)).toEqual([signature.digest]);

    // A subject nobody refers to still answers 200 with an empty index.
    const none = await client.fetch(client.url('referrers', { name: 'ref/app', digest: sbom.digest }));
    expect(none.status).toBe(200);
    expect(((await none.json()) as { manifests: unknown[] }).manifests).toEqual([]);

    // Paged one at a time: Link: rel="next" carries on until every referrer was listed.
    const paged: string[] = [];
    let next: string | undefined = `/v2/ref/app/referrers/${subject.digest}?n=1`;
    while (next) {
      const response = await client.fetch(next);
      expect(response.status).toBe(200);
      const pageIndex = (await response.json()) as { manifests: Array<{ digest: string }> };
      expect(pageIndex.manifests.length).toBeLessThanOrEqual(1);
      paged.push(...pageIndex.manifests.map((m) => m.digest));
      next = /^<([^>]+)>; rel="next"$/.exec(response.headers.get('link') ?? '')?.[1];
    }
    expect(paged.sort()).toEqual([signature.digest, sbom.digest].sort());

    // Deleting a referrer removes it from the list.
    await client.fetch(client.url('manifest', { name: 'ref/app', reference: signature.digest }), { method: 'DELETE' });
    const after = (await (await client.fetch(client.url('referrers', { name: 'ref/app', digest: subject.digest }))).json()) as { manifests: Array<{ digest: string }> };
    expect(after.manifests.map((m) => m.digest)).toEqual([sbom.digest]);
  });

  it('referrers in a repository that does not exist are an empty index, not a 404 ("Listing Referrers": MUST NOT 404)', async () => {
    const response = await client.fetch(`/v2/ref/nowhere/referrers/sha256:${'c'.repeat(64)}`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });

  it('referrers with a malformed digest are DIGEST_INVALID ("Listing Referrers", "Error codes")', async () => {
    await client.pushImage('ref/bad', 'v1');
    const response = await client.fetch('/v2/ref/bad/referrers/sha256:xyz');
    expect(response.status).toBe(400);
    expect(await errorCodes(response)).toEqual(['DIGEST_INVALID']);
  });
});
