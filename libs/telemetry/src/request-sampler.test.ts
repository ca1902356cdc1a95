import { describe, expect, it } from 'vitest';
import { RequestSampler, tracesIncomingRequest } from './request-sampler.js';

/** How many of `count` requests arriving together are traced. */
function traced(sampler: RequestSampler, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i += 1) if (sampler.traces()) n += 1;
  return n;
}

describe('RequestSampler (README, "Traces")', () => {
  it('traces at most perSecond requests in one second, and as many again in the next', () => {
    let ms = 5_000;
    const sampler = new RequestSampler({ ratio: 1, perSecond: 3, now: () => ms, random: () => 0 });
    expect(traced(sampler, 10)).toBe(3);
    ms += 999;
    expect(traced(sampler, 10)).toBe(0);
    ms += 1;
    expect(traced(sampler, 10)).toBe(3);
  });

  it('traces the ratio\'s share of requests while under the cap', () => {
    let draw = 0;
    // 0, 0.1, 0.2, ... 0.9, 0, ...: a ratio of 0.25 takes three of every ten.
    const sampler = new RequestSampler({ ratio: 0.25, perSecond: 1_000, now: () => 0, random: () => (draw++ % 10) / 10 });
    expect(traced(sampler, 100)).toBe(30);
  });

  it('traces nothing with a ratio of 0', () => {
    const sampler = new RequestSampler({ ratio: 0, perSecond: 1_000, random: () => 0 });
    expect(traced(sampler, 100)).toBe(0);
  });
});

describe('tracesIncomingRequest (README, "Traces")', () => {
  const sampling = (perSecond: number) => ({
    reads: new RequestSampler({ ratio: 1, perSecond, now: () => 0 }),
    writes: new RequestSampler({ ratio: 1, perSecond, now: () => 0 }),
  });
  const request = (method: string, url: string, traceparent?: string) => ({ method, url, headers: traceparent ? { traceparent } : {} });

  it('traces at most the writes\' cap of pushes in a second, whatever the reads\' cap leaves', () => {
    const caps = sampling(2);
    const pushes = Array.from({ length: 5 }, () => tracesIncomingRequest(request('PUT', '/v2/a/blobs/uploads/x?digest=sha256:0'), caps));
    expect(pushes).toEqual([true, true, false, false, false]);
    expect(tracesIncomingRequest(request('GET', '/v2/a/manifests/v1'), caps)).toBe(true);
  });

  it('follows a caller\'s traceparent saying its trace is not recorded, and counts one saying it is', () => {
    const caps = sampling(1);
    expect(tracesIncomingRequest(request('POST', '/api/v1/changes', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'), caps)).toBe(false);
    expect(tracesIncomingRequest(request('POST', '/api/v1/changes', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'), caps)).toBe(true);
    expect(tracesIncomingRequest(request('POST', '/api/v1/changes', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'), caps)).toBe(false);
  });

  it('leaves out a pull outside the ratio\'s share before looking at its path or headers', () => {
    const caps = { reads: new RequestSampler({ ratio: 0.01, perSecond: 10, now: () => 0, random: () => 0.5 }), writes: new RequestSampler({ ratio: 1, perSecond: 10, now: () => 0 }) };
    const untouchable = () => {
      throw new Error('read');
    };
    const pull = Object.defineProperties({ method: 'GET' }, { url: { get: untouchable }, headers: { get: untouchable } }) as Parameters<typeof tracesIncomingRequest>[0];
    expect(tracesIncomingRequest(pull, caps)).toBe(false);
  });

  it('traces no scrape or probe', () => {
    for (const url of ['/metrics', '/healthz', '/readyz?verbose']) expect(tracesIncomingRequest(request('GET', url), sampling(10))).toBe(false);
  });
});
