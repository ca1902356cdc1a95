import { describe, expect, it } from 'vitest';
import { JobRouter, type JobHandler } from './index.js';

function handler(name: string): JobHandler {
  return { name: name as JobHandler['name'], parse: (data) => data, run: async () => {}, giveUp: async () => {} };
}

describe('JobRouter (CONTRIBUTING.md, "Wiring": every job name has exactly one handler)', () => {
  it('routes each job name to its handler', () => {
    const replicate = handler('replicate');
    expect(new JobRouter([replicate]).handlerFor('replicate')).toBe(replicate);
    expect(new JobRouter([replicate]).handlerFor('other')).toBeUndefined();
  });

  it('refuses a job name without a handler', () => {
    expect(() => new JobRouter([])).toThrow(/job replicate has 0 handlers/);
    expect(() => new JobRouter([handler('replicate')], ['replicate', 'purge'])).toThrow(/job purge has 0 handlers/);
  });

  it('refuses two handlers for one job name', () => {
    expect(() => new JobRouter([handler('replicate'), handler('replicate')])).toThrow(/job replicate has 2 handlers/);
  });

  it('refuses a handler for a name that is no job', () => {
    expect(() => new JobRouter([handler('replicate'), handler('purge')])).toThrow(/a handler for purge, which is no job name/);
  });
});
