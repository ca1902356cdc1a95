import { describe, expect, it } from 'vitest';
import { until } from './wait.js';

describe('until', () => {
  it('resolves once the condition holds', async () => {
    let polls = 0;
    await until(() => ++polls === 3);
    expect(polls).toBe(3);
  });

  it('fails naming what it waited for once its deadline has passed', async () => {
    await expect(until(() => false, { deadlineMs: 20 })).rejects.toThrow('not within 0.02 s: () => false');
    await expect(until(async () => false, { what: 'the region drained', deadlineMs: 20 })).rejects.toThrow('not within 0.02 s: the region drained');
  });
});
