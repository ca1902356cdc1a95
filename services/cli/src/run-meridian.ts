import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Test support: the `meridian` command line run as a process, as `pnpm meridian` runs it.

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');
const repoRoot = path.resolve(path.dirname(main), '../../..');

export interface MeridianRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `meridian ...args` from the checkout's root with exactly `env`; resolves once it exits. */
export function runMeridian(args: string[], env: NodeJS.ProcessEnv): Promise<MeridianRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
