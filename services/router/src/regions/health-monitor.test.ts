import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { HealthMonitor } from './health-monitor.js';

// The monitor's hysteresis, driven probe by probe: each probe's answer is scripted per region
// (the HTTP probe itself is exercised against real gateways in router.int.test.ts).

function scripted(answers: Record<string, Array<'ok' | 'fail'>>) {
  const changes: Array<[string, boolean]> = [];
  const monitor = new HealthMonitor({
    intervalMs: 3_600_000,
    unhealthyAfter: 3,
    healthyAfter: 2,
    logger: pino({ level: 'silent' }),
    probe: async ({ name }) => {
      if (answers[name]!.shift() === 'fail') throw new Error('/readyz answered 503');
    },
    onChange: (name, healthy) => changes.push([name, healthy]),
  });
  return { monitor, changes, round: () => monitor.probeAll() };
}

describe('HealthMonitor', () => {
  it('decides a region\'s health at its first probe', async () => {
    const { monitor } = scripted({ a: ['ok'], b: ['fail'] });
    await monitor.track([{ name: 'a', http: 'http://a' }, { name: 'b', http: 'http://b' }]);
    expect(monitor.isHealthy('a')).toBe(true);
    expect(monitor.isHealthy('b')).toBe(false);
    expect(monitor.snapshot().get('b')).toMatchObject({ healthy: false, probed: true, lastError: '/readyz answered 503' });
  });

  it('takes a healthy region out after N failures in a row, and puts it back after M successes in a row', async () => {
    const { monitor, changes, round } = scripted({ a: ['ok', 'fail', 'fail', 'ok', 'fail', 'fail', 'fail', 'ok', 'fail', 'ok', 'ok'] });
    await monitor.track([{ name: 'a', http: 'http://a' }]);
    const seen: boolean[] = [];
    for (let i = 0; i < 10; i++) {
      await round();
      seen.push(monitor.isHealthy('a'));
    }
    // fail fail ok: still in (the run of failures broke); fail fail fail: out; ok fail ok ok: back at the second ok in a row.
    expect(seen).toEqual([true, true, true, true, true, false, false, false, false, true]);
    // The first probe counts as a change too: the region was not routable before it.
    expect(changes).toEqual([
      ['a', true],
      ['a', false],
      ['a', true],
    ]);
  });

  it('forgets regions no longer listed and probes a region afresh when its endpoint changes', async () => {
    const { monitor } = scripted({ a: ['ok', 'fail'], b: ['ok'] });
    await monitor.track([{ name: 'a', http: 'http://a' }, { name: 'b', http: 'http://b' }]);
    await monitor.track([{ name: 'a', http: 'http://a2' }]);
    expect([...monitor.snapshot().keys()]).toEqual(['a']);
    expect(monitor.isHealthy('a')).toBe(false);
    expect(monitor.isHealthy('b')).toBe(false);
  });
});
