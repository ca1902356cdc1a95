import { describe, expect, it } from 'vitest';
import type { RunResult, Scenario } from './scenarios.js';
import { pairedRatios, runOnFreshTargets } from './side-by-side.js';
import type { RunningTarget } from './targets.js';

function run(rps: number, serverCpuSeconds = 1): RunResult {
  return {
    figures: { rps },
    details: { requests: rps * 10 },
    wallSeconds: 10,
    clientCpuSeconds: 1,
    serverCpuSeconds,
    databaseCpuSeconds: undefined,
    machineCpuSeconds: 2,
    otherProcesses: [],
    warnings: [],
    clientThreads: 1,
  };
}

// The side-by-side benches judge a feature by its figure over the same figure without it. Rounds
// on a shared machine swing by tens of per cent, so the two sides of one round (run back to back)
// are compared with each other, and the verdict is the median of those rounds' ratios.
describe('pairedRatios', () => {
  it('compares each round with the same round of the other side, and takes the median of the rounds', () => {
    const off = [run(100), run(50), run(100), run(100), run(100)];
    // Round 2 was slow for both sides (load elsewhere on the machine); round 4 was slow for one.
    const on = [run(90), run(46), run(95), run(40), run(92)];
    const summary = pairedRatios(off, on, (r) => r.figures.rps);
    expect(summary?.rounds).toEqual([0.9, 0.92, 0.95, 0.4, 0.92]);
    expect(summary?.median).toBeCloseTo(0.92);
    expect(summary?.min).toBeCloseTo(0.4);
    expect(summary?.max).toBeCloseTo(0.95);
  });

  it('leaves out a round that lacks the figure on either side', () => {
    const summary = pairedRatios([run(100), run(0), run(100)], [run(80), run(10), run(120)], (r) => r.figures.rps || undefined);
    expect(summary?.rounds).toEqual([0.8, 1.2]);
    expect(summary?.median).toBeCloseTo(1.0);
  });

  it('says nothing when no round has both sides', () => {
    expect(pairedRatios([], [run(1)], (r) => r.figures.rps)).toBeUndefined();
  });
});

// Two gateway processes of one build and configuration can differ in CPU per request by several
// per cent for their whole life; a comparison made on one pair of processes measures that pair.
describe('runOnFreshTargets', () => {
  it('runs every round on targets started for it, stopped before the next round starts', async () => {
    const events: string[] = [];
    const target = (label: string, round: number): RunningTarget => ({
      name: 'meridian',
      label,
      url: `http://${label}.${round}`,
      pid: round,
      kind: 'registry',
      usesPostgres: false,
      exitReport: () => undefined,
      stop: async () => void events.push(`stop ${label} ${round}`),
    });
    const scenario: Scenario = {
      id: 'manifest-get',
      title: 'manifest GET',
      includesStatic: false,
      figures: [],
      prepare: async (t) => void events.push(`prepare ${t.url}`),
      run: async (t, round) => {
        events.push(`run ${t.url}`);
        return run(t.label === 'off' ? 100 : 90 + round);
      },
    };
    const runs = await runOnFreshTargets([scenario], async (round) => [target('off', round), target('on', round)], 2, () => undefined);
    expect(events).toEqual([
      'prepare http://off.1', 'prepare http://on.1', 'run http://off.1', 'run http://on.1', 'stop off 1', 'stop on 1',
      'prepare http://off.2', 'prepare http://on.2', 'run http://on.2', 'run http://off.2', 'stop off 2', 'stop on 2',
    ]);
    expect(runs.get('manifest-get on')?.map((r) => r.figures.rps)).toEqual([91, 92]);
    expect(runs.get('manifest-get off')?.map((r) => r.figures.rps)).toEqual([100, 100]);
  });
});
