import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const gatewayMain = path.join(repoRoot, 'services/gateway/src/main.ts');

export interface GatewayProcessOptions {
  databaseUrl: string;
  dataDir: string;
  /** 0 picks a free port; the gateway reports the one it bound on stdout. */
  port?: number;
  host?: string;
  /**
   * More environment. Auth is off (MERIDIAN_AUTH=off) unless this sets MERIDIAN_AUTH: the tests
   * that check identity and access turn it on, with credentials; a test of the gateway's own
   * default passes `MERIDIAN_AUTH: ''` (empty counts as unset) and says so.
   */
  env?: Record<string, string>;
  /** How long the gateway may take to listen before it is killed and the start fails (30 s). */
  startTimeoutMs?: number;
  /**
   * `node` (the default) runs the entry point directly; `pnpm start` runs it the way the README
   * does, so that `child` is pnpm and a signal to it must reach the gateway through pnpm.
   */
  launcher?: 'node' | 'pnpm start';
  /** Keep everything the gateway writes (stdout and stderr) for `output()`, e.g. to search its log. */
  keepOutput?: boolean;
}

export interface GatewayProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** What the gateway has written so far, with `keepOutput`; up to the banner otherwise. */
  output(): string;
  /** `signal` (SIGTERM), SIGKILL after `graceMs`; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

/**
 * Starts a real gateway process (the same entry point `pnpm start` runs) and resolves once it
 * listens. The gateway always prints a banner line `Meridian listening on http://HOST:PORT`.
 */
export async function startGatewayProcess(opts: GatewayProcessOptions): Promise<GatewayProcess> {
  const viaPnpm = opts.launcher === 'pnpm start';
  const [command, args] = viaPnpm ? ['pnpm', ['start']] : [process.execPath, ['--import', 'tsx', gatewayMain]];
  const child = spawn(command, args, {
    cwd: repoRoot,
    // Under pnpm, the gateway is a grandchild: its own process group lets a test kill it all.
    detached: viaPnpm,
    env: {
      ...process.env,
      PORT: String(opts.port ?? 0),
      HOST: opts.host ?? '127.0.0.1',
      DATABASE_URL: opts.databaseUrl,
      MERIDIAN_DATA_DIR: opts.dataDir,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      MERIDIAN_AUTH: 'off',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A forced stop reaches the gateway itself: under pnpm, the whole process group.
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (viaPnpm) process.kill(-child.pid!, signal);
      else child.kill(signal);
    } catch {
      // already gone
    }
  };
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    // A gateway that hangs before its banner must not hang whoever started it.
    const deadline = setTimeout(() => {
      kill('SIGKILL');
      reject(new Error(`gateway did not listen within ${startTimeoutMs} ms:\n${output}`));
    }, startTimeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (https?:\/\/[^\s"]+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(deadline);
        child.stdout?.off('data', onData);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`gateway exited (${code}) before listening:\n${output}`));
    });
  });
  // stderr is kept all along (the listener above stays).
  if (opts.keepOutput) child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Keep draining so a chatty gateway never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url,
    pid: child.pid!,
    child,
    output: () => output,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      // Already gone (exited, or killed by a signal): there is no exit event left to wait for.
      if (child.exitCode !== null || child.signalCode !== null) {
        // pnpm may be gone with the gateway still running under it (the bug the e2e test guards).
        if (signal === 'SIGKILL') kill(signal);
        return child.exitCode;
      }
      const exited = once(child, 'exit') as Promise<[number | null]>;
      // SIGTERM goes to the child alone (under pnpm, that is what a service manager does); a
      // SIGKILL, or the one after the grace period, to all of it.
      if (signal === 'SIGKILL') kill(signal);
      else child.kill(signal);
      // A gateway that does not finish within the grace period is killed, so no test hangs on it.
      const forced = setTimeout(() => kill('SIGKILL'), graceMs);
      try {
        const [code] = await exited;
        return code;
      } finally {
        clearTimeout(forced);
      }
    },
  };
}
