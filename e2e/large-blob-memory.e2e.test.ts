/**
 * A 1 GiB blob through a real gateway process, in 8 MiB chunks, and back: the gateway streams
 * bytes to disk and hashes them as they flow, so its resident memory must stay flat whatever the
 * blob's size. The test samples the gateway's VmRSS from /proc every ~100 ms, from outside the
 * process, and holds it under 256 MiB.
 *
 * The test process never holds the blob either: chunks come from a deterministic keystream
 * (AES-128-CTR over zeros), are hashed as they are sent, and the download is hashed as it arrives.
 * On disk the blob exists once, in the gateway's data directory, removed in afterAll.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciTestClient, createTestDatabase, startGatewayProcess, type GatewayProcess, type TestDatabase } from '@meridian/testkit';

const MiB = 1024 * 1024;
const BLOB_SIZE = 1024 * MiB;
const CHUNK_SIZE = 8 * MiB;
const RSS_LIMIT = 256 * MiB;
const SAMPLE_EVERY_MS = 100;
const REPOSITORY = 'e2e/large';

interface MemoryStatus {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size over the process's life (the kernel's high-water mark), bytes. */
  hwm: number;
}

async function memoryOf(pid: number): Promise<MemoryStatus | undefined> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** Samples a process's VmRSS from outside it until stopped; keeps the maximum. */
function startRssSampler(pid: number) {
  let max = 0;
  let samples = 0;
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pending = memoryOf(pid).then((memory) => {
      if (!memory || Number.isNaN(memory.rss)) return;
      samples++;
      max = Math.max(max, memory.rss);
    });
  }, SAMPLE_EVERY_MS);
  return {
    get max() {
      return max;
    },
    get samples() {
      return samples;
    },
    async stop() {
      clearInterval(timer);
      await pending;
    },
  };
}

/** A deterministic pseudo-random byte source: AES-128-CTR keystream with a fixed key. */
function keystream(): (size: number) => Buffer {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 0x6d), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(CHUNK_SIZE);
  return (size) => cipher.update(zeros.subarray(0, size));
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe('a 1 GiB blob through a gateway process', () => {
  let workDir: string | undefined;
  let database: TestDatabase | undefined;
  let gateway: GatewayProcess | undefined;
  let gatewayExit: string | undefined;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-large-'));
    const dataDir = path.join(workDir, 'data');
    await mkdir(dataDir);
    database = await createTestDatabase();
    // One gateway process (no cluster supervisor), so the process measured is the one that
    // streams every byte: memory per gateway is what must stay flat.
    gateway = await startGatewayProcess({ databaseUrl: database.url, dataDir, env: { MERIDIAN_WORKERS: '1' } });
    gateway.child.once('exit', (code, signal) => (gatewayExit = `exit code ${code}, signal ${signal}`));
  });

  afterAll(async () => {
    // stop() waits for an 'exit' event, which never comes again if the process already died.
    if (gateway && gatewayExit === undefined) await gateway.stop();
    await database?.drop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it(
    'pushes 1 GiB in 8 MiB chunks and pulls it back with the same digest, the gateway staying under 256 MiB resident ("Pushing a blob in chunks", "Pulling blobs")',
    async () => {
      const client = new OciTestClient(gateway!.url);
      const pid = gateway!.pid;
      const baseline = await memoryOf(pid);
      const sampler = startRssSampler(pid);
      const started = Date.now();

      // distribution-spec "Pushing a blob in chunks": POST, then PATCH each chunk with its Content-Range.
      const post = await client.fetch(client.url('blob-upload', { name: REPOSITORY }), { method: 'POST' });
      expect(post.status).toBe(202);
      let location = post.headers.get('location')!;
      const next = keystream();
      const sent = createHash('sha256');
      for (let offset = 0; offset < BLOB_SIZE; offset += CHUNK_SIZE) {
        const chunk = next(Math.min(CHUNK_SIZE, BLOB_SIZE - offset));
        sent.update(chunk);
        const end = offset + chunk.length - 1;
        const patch = await client.fetch(location, {
          method: 'PATCH',
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${end}` },
          body: chunk as BodyInit,
        });
        expect(patch.status, `chunk at ${offset}`).toBe(202);
        expect(patch.headers.get('range'), `chunk at ${offset}`).toBe(`0-${end}`);
        location = patch.headers.get('location')!;
      }
      const digest = `sha256:${sent.digest('hex')}`;
      const put = await client.fetch(`${location}&digest=${digest}`, { method: 'PUT' });
      expect(put.status).toBe(201);
      expect(put.headers.get('docker-content-digest')).toBe(digest);
      const uploaded = Date.now();

      const head = await client.fetch(client.url('blob', { name: REPOSITORY, digest }), { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(BLOB_SIZE));

      // distribution-spec "Pulling blobs": stream the download, hashing as it arrives.
      const get = await client.fetch(client.url('blob', { name: REPOSITORY, digest }));
      expect(get.status).toBe(200);
      expect(get.headers.get('content-length')).toBe(String(BLOB_SIZE));
      expect(get.headers.get('docker-content-digest')).toBe(digest);
      const received = createHash('sha256');
      let receivedBytes = 0;
      const reader = get.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received.update(value);
        receivedBytes += value.length;
      }
      const downloaded = Date.now();

      await sampler.stop();
      const final = await memoryOf(pid);
      console.log(
        `large blob: 1 GiB pushed in ${BLOB_SIZE / CHUNK_SIZE} chunks of 8 MiB in ${seconds(uploaded - started)}, ` +
          `pulled in ${seconds(downloaded - uploaded)}; gateway pid ${pid} RSS: baseline ${mib(baseline?.rss ?? NaN)}, ` +
          `max sampled ${mib(sampler.max)} over ${sampler.samples} samples, kernel peak (VmHWM) ${mib(final?.hwm ?? NaN)}`,
      );

      expect(gatewayExit, 'the gateway process died').toBeUndefined();
      expect(receivedBytes).toBe(BLOB_SIZE);
      expect(`sha256:${received.digest('hex')}`).toBe(digest);
      expect(sampler.samples).toBeGreaterThan(10);
      expect(sampler.max, `max sampled RSS ${mib(sampler.max)}`).toBeLessThan(RSS_LIMIT);

      // The blob leaves the repository; its bytes go with the data directory in afterAll.
      expect((await client.fetch(client.url('blob', { name: REPOSITORY, digest }), { method: 'DELETE' })).status).toBe(202);
    },
    10 * 60_000,
  );
});
