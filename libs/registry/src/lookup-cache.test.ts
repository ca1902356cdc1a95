import { describe, expect, it } from 'vitest';
import { LookupCache } from './lookup-cache.js';

const manifest = { digest: 'sha256:' + 'a'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', payload: Buffer.from('{}') };

describe('LookupCache', () => {
  it('serves what was stored and drops it when a change names it', () => {
    const cache = new LookupCache({ maxEntries: 10 });
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration('r'));
    cache.setBlobSize('r', manifest.digest, 5, cache.currentGeneration('r'));
    cache.setTagList('r', { repositoryId: 1, tags: ['v1'] }, cache.currentGeneration('r'));
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
    const readAt = cache.currentGeneration('r'); // a lookup starts reading the database…
    cache.invalidate({ kind: 'tag', repository: 'r', tag: 'v1' }); // …a tag move commits meanwhile
    cache.setManifest('r', 'v1', manifest, readAt); // the old answer must not be cached
    cache.setTagList('r', { repositoryId: 1, tags: ['v1'] }, readAt);
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
    expect(cache.getTagList('r')).toBeUndefined();
  });

  // Generations are per repository: pushes to one repository do not stop caching for others.
  it('stores a read that overlapped a change to another repository', () => {
    const cache = new LookupCache({ maxEntries: 10 });
    const readAt = cache.currentGeneration('quiet');
    cache.invalidate({ kind: 'tag', repository: 'busy', tag: 'latest' });
    cache.setManifest('quiet', 'v1', manifest, readAt);
    expect(cache.getManifest('quiet', 'v1')).toBe(manifest);
  });

  it('does not store a read that overlapped a clear, or whose repository\'s stamp was evicted meanwhile', () => {
    const cache = new LookupCache({ maxEntries: 10 });
    const beforeClear = cache.currentGeneration('r');
    cache.suspend();
    cache.resume();
    cache.setManifest('r', 'v1', manifest, beforeClear);
    expect(cache.getManifest('r', 'v1')).toBeUndefined();

    cache.invalidate({ kind: 'tag', repository: 'r', tag: 'v1' });
    const readAt = cache.currentGeneration('r');
    // Changes to enough other repositories push r's stamp out of the bounded table.
    for (let i = 0; i < 10_001; i++) cache.invalidate({ kind: 'tag', repository: `other/${i}`, tag: 't' });
    cache.setManifest('r', 'v1', manifest, readAt);
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
  });

  it('with zero entries caches nothing', () => {
    const cache = new LookupCache({ maxEntries: 0 });
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration('r'));
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
  });

  it('while suspended (notifications may be missed) stores nothing, and starts afresh on resume', () => {
    const cache = new LookupCache({ maxEntries: 10 });
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration('r'));
    cache.suspend();
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration('r'));
    expect(cache.getManifest('r', 'v1')).toBeUndefined();
    cache.resume();
    cache.setManifest('r', 'v1', manifest, cache.currentGeneration('r'));
    expect(cache.getManifest('r', 'v1')).toBe(manifest);
  });
});
