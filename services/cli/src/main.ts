import { createInterface } from 'node:readline/promises';
import { runCli } from './cli.js';

/**
 * `meridian`: the operator's command line (`pnpm meridian --help` from the checkout). Reads its
 * environment here, once, and hands it to the commands.
 */
runCli(process.argv.slice(2), {
  env: process.env,
  // pnpm runs scripts from the package's folder; INIT_CWD is where the user typed the command.
  cwd: process.env.INIT_CWD ?? process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  now: () => new Date(),
  // Only a person at a terminal can answer a confirmation; a script passes --yes.
  ask: process.stdin.isTTY
    ? async (question) => {
        const terminal = createInterface({ input: process.stdin, output: process.stderr });
        try {
          return await terminal.question(question);
        } finally {
          terminal.close();
        }
      }
    : undefined,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`meridian: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
