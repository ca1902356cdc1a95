import { describe, expect, it } from 'vitest';
import { ReadSampler } from './read-sampler.js';

/** How many of `count` reads arriving together are traced. */
function traced(sampler: ReadSampler, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i += 1) if (sampler.traces()) n += 1;
  return n;
}

describe('ReadSampler (README, "Traces")', () => {
  it('traces at most perSecond reads in one second, and as many again in the next', () => {
    let ms = 5_000;
    const sampler = new ReadSampler({ ratio: 1, perSecond: 3, now: () => ms, random: () => 0 });
    expect(traced(sampler, 10)).toBe(3);
    ms += 999;
    expect(traced(sampler, 10)).toBe(0);
    ms += 1;
    expect(traced(sampler, 10)).toBe(3);
  });

  it('traces the ratio\'s share of reads while under the cap', () => {
    let draw = 0;
    // 0, 0.1, 0.2, ... 0.9, 0, ...: a ratio of 0.25 takes three of every ten.
    const sampler = new ReadSampler({ ratio: 0.25, perSecond: 1_000, now: () => 0, random: () => (draw++ % 10) / 10 });
    expect(traced(sampler, 100)).toBe(30);
  });

  it('traces nothing with a ratio of 0', () => {
    const sampler = new ReadSampler({ ratio: 0, perSecond: 1_000, random: () => 0 });
    expect(traced(sampler, 100)).toBe(0);
  });
});
