import { describe, expect, it } from 'vitest';
import { LookupCache } from './lookup-cache.js';

const manifest = { digest: 'sha256:' + 'a'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', payload: Buffer.from('{}') };

describe('LookupCache', () => {
  it('serves what was stored and drops it when a change names it', () => {
    const cache = new LookupCache({ maxEntries: 10 });
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration());
    cache.setBlobSize('r', manifest.digest, 5, cache.currentGeneration());
    cache.setTagList('r', { repositoryId: 1, tags: ['v1'] }, cache.currentGeneration());
    expect(cache.getManifest('r', 'v1')).toBe(manifest);
    expect(cache.getBlobSize('r', manifest.digest)).toBe(5);

    cache.invalidate({ kind: 'tag', repository: 'r', tag: 'v1' });
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
    expect(cache.getTagList('r')).toBeUndefined();
    expect(cache.getBlobSize('r', manifest.digest)).toBe(5);

    cache.invalidate({ kind: 'blob', repository: 'r', digest: manifest.digest });
    expect(cache.getBlobSize('r', manifest.digest)).toBeUndefined();
  });

  it('does not store a read that raced a write: the write invalidated before the read finished', () => {
    const cache = new LookupCache({ maxEntries: 10 });
    const readAt = cache.currentGeneration(); // a lookup starts reading the database…
    cache.invalidate({ kind: 'tag', repository: 'r', tag: 'v1' }); // …a tag move commits meanwhile
    cache.setManifest('r', 'v1', manifest, readAt); // the old answer must not be cached
    cache.setTagList('r', { repositoryId: 1, tags: ['v1'] }, readAt);
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
    expect(cache.getTagList('r')).toBeUndefined();
  });

  it('with zero entries caches nothing', () => {
    const cache = new LookupCache({ maxEntries: 0 });
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration());
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
  });

  it('while suspended (notifications may be missed) stores nothing, and starts afresh on resume', () => {
    const cache = new LookupCache({ maxEntries: 10 });
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration());
    cache.suspend();
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration());
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
    cache.resume();
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration());
    expect(cache.getManifest('r', 'v1')).toBe(manifest);
  });
});
