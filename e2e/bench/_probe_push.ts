import { Agent } from 'undici';
import { OciClient } from './oci-client.js';
import { writeBlobFiles, freshVariant } from './fixtures.js';
import { randomBytes } from 'node:crypto';
const url = process.argv[2]!; const rounds = Number(process.argv[3] ?? 3);
const files = await writeBlobFiles('/tmp/exp/fixtures', 'large', 4, 256 * 2 ** 20, { keepInMemory: false });
const agent = new Agent({ connections: 2 });
const client = new OciClient(url, agent);
const t0 = performance.now(); let bytes = 0;
for (let r = 0; r < rounds; r++) {
  const batch = files.map((f) => freshVariant(f, randomBytes(16)));
  let next = 0;
  await Promise.all([0, 1].map(async () => { while (next < batch.length) { const b = batch[next++]!; await client.pushBlob('bench/blobs', b); bytes += b.size; } }));
}
const s = (performance.now() - t0) / 1000; console.log(`${(bytes / 2 ** 20 / s).toFixed(0)} MiB/s over ${s.toFixed(1)} s`);
await agent.close();
