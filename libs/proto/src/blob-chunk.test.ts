import { describe, expect, it } from 'vitest';
import { ReplicaService } from './index.js';

// GetBlob's replies as a replica server serialises them (replica.proto, BlobChunk): standard
// protobuf bytes (protobuf encoding guide, "Length-delimited records" and "Base 128 varints"),
// given as a list whose data part is the chunk's own memory, never a copy of it.

const { responseSerialize: serialize, responseDeserialize: deserialize } = ReplicaService.GetBlob;
const parts = (value: Parameters<typeof serialize>[0]): Buffer[] => [serialize(value)].flat() as Buffer[];

describe('BlobChunk serialisation', () => {
  it('hands the chunk bytes on uncopied', () => {
    const data = Buffer.alloc(1024 * 1024, 7);
    const list = parts({ data, size: String(5 * 1024 ** 3) });
    expect(list.some((part) => part.buffer === data.buffer && part.byteOffset === data.byteOffset && part.length === data.length)).toBe(true);
  });

  it('gives bytes any protobuf decoder reads back as the same chunk', () => {
    for (const [length, size] of [[0, '0'], [1, '1'], [127, '0'], [128, '300'], [16_385, String(2 ** 35 + 3)], [1024 * 1024, String(Number.MAX_SAFE_INTEGER)]] as const) {
      const data = Buffer.from(Array.from({ length }, (_, i) => i % 251));
      const decoded = deserialize(Buffer.concat(parts({ data, size })));
      expect(decoded.data.equals(data)).toBe(true);
      expect(decoded.size).toBe(size);
    }
  });
});
