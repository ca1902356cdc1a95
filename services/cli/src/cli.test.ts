import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@meridian/testkit';
import { runCli, type CliIo } from './cli.js';

// The purge confirmation on a terminal, with the terminal stubbed: no control plane is asked
// anything until the operator has typed the region's name (the process tests in cli.int.test.ts
// cover the rest, without a terminal).

function terminal(answer: string) {
  const seen = { stdout: '', stderr: '', questions: [] as string[] };
  const io: CliIo = {
    env: {},
    cwd: '/',
    stdout: (text) => (seen.stdout += text),
    stderr: (text) => (seen.stderr += text),
    now: () => new Date(),
    ask: async (question) => {
      seen.questions.push(question);
      return answer;
    },
  };
  return { io, seen };
}

// A closed port: a request made by mistake would fail as unreachable, with another message.
let server: string;
beforeAll(async () => {
  server = `http://127.0.0.1:${await freePort()}`;
});

describe('meridian region remove --purge on a terminal', () => {
  it('asks for the region\'s name first, and an answer naming anything else changes nothing (exit 1)', async () => {
    const { io, seen } = terminal('eu');
    expect(await runCli(['--server', server, 'region', 'remove', 'us', '--purge'], io)).toBe(1);
    expect(seen.questions).toEqual(["This deletes every repository, manifest, tag and blob region us holds, for good. Type the region's name to go on: "]);
    expect(seen.stderr).toBe('meridian: purge of region us not confirmed: nothing changed\n');
    expect(seen.stdout).toBe('');
  });

  it('with the name typed, goes on to ask the control plane; --yes asks nothing', async () => {
    const typed = terminal(' us ');
    expect(await runCli(['--server', server, 'region', 'remove', 'us', '--purge'], typed.io)).toBe(1);
    expect(typed.seen.stderr).toMatch(/^meridian: cannot reach the control plane at http:\/\/127\.0\.0\.1:\d+ /);

    const confirmed = terminal('never read');
    expect(await runCli(['--server', server, 'region', 'remove', 'us', '--purge', '--yes'], confirmed.io)).toBe(1);
    expect(confirmed.seen.questions).toEqual([]);
    expect(confirmed.seen.stderr).toMatch(/^meridian: cannot reach the control plane/);
  });
});
