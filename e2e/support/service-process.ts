import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A server the e2e tests (and the bench) run in the background: Distribution, containerd. It
 * keeps the tail of the output for a failed start, remembers a spawn error (a missing binary
 * emits 'error', not 'exit'), and stops with SIGTERM, then SIGKILL after a grace period, so a
 * stuck server never hangs afterAll.
 */
export interface ServiceProcess {
  child: ChildProcess;
  /** The last 8,000 characters of stdout and stderr. */
  output(): string;
  /** Why it could not be started or why it is gone; undefined while it runs. */
  failure(): string | undefined;
  stop(): Promise<void>;
}

export function startServiceProcess(name: string, binary: string, args: readonly string[], graceMs = 5_000): ServiceProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-8_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  return {
    child,
    output: () => output,
    failure() {
      if (spawnError) return `cannot run ${name}: ${spawnError.message}`;
      if (gone()) return `${name} exited (${child.exitCode ?? child.signalCode}); last output:\n${output.slice(-2_000)}`;
      return undefined;
    },
    async stop() {
      if (gone() || spawnError) return;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(kill);
      }
    },
  };
}
