import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshVariant, variantTailBytes, writeBlobFiles } from './fixtures.js';
import { pushBody } from './oci-client.js';

// The bench's push figures are only honest if every pushed blob is new to the registry and its
// digest is that of the bytes really sent; a wrong digest would fail the push, a repeated one
// would let the registry skip the write.
let root: string;
beforeAll(async () => (root = await mkdtemp(path.join(tmpdir(), 'meridian-bench-fixtures-'))));
afterAll(async () => rm(root, { recursive: true, force: true }));

async function sha256Of(body: Buffer | Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  if (Buffer.isBuffer(body)) {
    hash.update(body);
    size = body.length;
  } else {
    for await (const chunk of body) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

describe('fresh blob variants for push scenarios', () => {
  it.each([
    ['from memory', true, 70_000],
    ['streamed from the file', false, 5 * 2 ** 20 + 3],
  ])('a variant %s sends bytes that hash to its digest, differ from the fixture, and keep its size', async (_label, keepInMemory, size) => {
    const [file] = await writeBlobFiles(root, `v-${String(keepInMemory)}`, 1, size, { keepInMemory });
    expect(await sha256Of(pushBody(file!))).toEqual({ digest: file!.digest, size });
    const digests = new Set<string>([file!.digest]);
    for (let i = 0; i < 3; i++) {
      const tail = Buffer.alloc(variantTailBytes, i + 1);
      const variant = freshVariant(file!, tail);
      expect(await sha256Of(pushBody(variant))).toEqual({ digest: variant.digest, size });
      digests.add(variant.digest);
    }
    expect(digests.size).toBe(4);
  });
});
