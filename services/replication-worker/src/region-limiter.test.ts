import { describe, expect, it } from 'vitest';
import { RegionLimiter } from './region-limiter.js';

/** A job that runs until its `finish` is called. */
function openJob() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { finish, work: () => done };
}

describe('RegionLimiter', () => {
  it('runs at most `limit` jobs per region at once, the rest in arrival order as slots free', async () => {
    const limiter = new RegionLimiter(2);
    const never = new AbortController().signal;
    const jobs = [openJob(), openJob(), openJob(), openJob()];
    const started: number[] = [];
    const runs = jobs.map((job, i) => limiter.run('us', never, () => (started.push(i), job.work())));
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect(limiter.waiting('us')).toBe(2);

    jobs[1]!.finish();
    await runs[1];
    expect(started).toEqual([0, 1, 2]);
    jobs[0]!.finish();
    await runs[0];
    expect(started).toEqual([0, 1, 2, 3]);
    expect(limiter.waiting('us')).toBe(0);
    jobs[2]!.finish();
    jobs[3]!.finish();
    await Promise.all(runs);
  });

  it('bounds each region on its own', async () => {
    const limiter = new RegionLimiter(1);
    const never = new AbortController().signal;
    const us = openJob();
    const eu = openJob();
    const started: string[] = [];
    const runs = [limiter.run('us', never, () => (started.push('us'), us.work())), limiter.run('eu', never, () => (started.push('eu'), eu.work()))];
    await Promise.resolve();
    expect(started).toEqual(['us', 'eu']);
    us.finish();
    eu.finish();
    await Promise.all(runs);
  });

  it('gives up waiting when the signal aborts, and the slot goes to the next waiter', async () => {
    const limiter = new RegionLimiter(1);
    const never = new AbortController().signal;
    const first = openJob();
    const running = limiter.run('us', never, first.work);
    const stop = new AbortController();
    const abandoned = limiter.run('us', stop.signal, async () => 'ran');
    const next = limiter.run('us', never, async () => 'next ran');
    stop.abort(new Error('stopping'));
    await expect(abandoned).rejects.toThrow('stopping');
    expect(limiter.waiting('us')).toBe(1);
    first.finish();
    await running;
    expect(await next).toBe('next ran');
  });
});
