/**
 * Runs Debian's containerd as a private daemon for e2e tests and drives it with `ctr`. Everything
 * the daemon writes lives under `workDir`:
 *
 *   workDir/config.toml             version 2 config: the paths below, the CRI plugin disabled
 *   workDir/root                    content store, metadata db, snapshots
 *   workDir/state                   runtime state
 *   workDir/opt                     the opt plugin's directory (else /opt/containerd)
 *   workDir/containerd.sock         the gRPC socket `ctr --address` talks to (+ `.ttrpc`)
 *
 * Pulls unpack with the `native` snapshotter (plain copies), so no overlay mount is needed and
 * nothing is left mounted when the directory is removed. No container is ever run.
 *
 * In containerd 1.6 the registry client is `ctr` itself (the daemon only stores content), so
 * `--http-dump` on a pull or push logs every request the client made; tests assert on those.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertExecutable } from './podman.js';
import { startServiceProcess } from './service-process.js';

export interface ContainerdOptions {
  /** A directory this daemon owns; the caller removes it after stop(). */
  workDir: string;
  /** Defaults to /usr/bin/containerd. */
  containerdBinary?: string;
  /** Defaults to /usr/bin/ctr. */
  ctrBinary?: string;
  /** The containerd namespace images are recorded in. */
  namespace?: string;
  /** Echo ctr's HTTP dump (every request and response header) to this process's stderr. */
  echoDebugLog?: boolean;
  /** Kills a ctr that hangs (a registry that never answers) instead of waiting for the test timeout. */
  timeoutMs?: number;
}

/** One HTTP request ctr made, from its `--http-dump` log: the method and the path with its query. */
export interface CtrRequest {
  method: string;
  path: string;
}

export interface CtrResult {
  /** Progress output (pull and push), or the command's table. */
  stdout: string;
  /** With `--http-dump`: every request and response header. */
  stderr: string;
  requests: CtrRequest[];
}

/** One row of `ctr images ls`. */
export interface CtrImage {
  ref: string;
  mediaType: string;
  digest: string;
  /** `linux/amd64`, in the order ctr lists them. */
  platforms: string[];
}

export interface CtrPullOptions {
  /** `--all-platforms`: fetch and unpack every instance of an index, not just the host's. */
  allPlatforms?: boolean;
}

export interface Containerd {
  /** The gRPC socket. */
  address: string;
  pid: number;
  /** `ctr images pull --plain-http --http-dump --snapshotter native REF`. */
  pull(reference: string, opts?: CtrPullOptions): Promise<CtrResult>;
  /** `ctr images push --plain-http --http-dump REF` (every platform of an index the store holds). */
  push(reference: string): Promise<CtrResult>;
  /** `ctr images tag SOURCE TARGET`. */
  tag(source: string, target: string): Promise<void>;
  /** `ctr images ls`. */
  listImages(): Promise<CtrImage[]>;
  /** `ctr content ls -q`: the digest of every blob in the content store. */
  listContent(): Promise<string[]>;
  /** Any other ctr invocation; `--address` and `--namespace` are added in front of `args`. */
  ctr(args: readonly string[]): Promise<CtrResult>;
  /** SIGTERM, then wait for exit (SIGKILL after 5s). */
  stop(): Promise<void>;
}

/**
 * A ctr run that exited non-zero. `stderr` holds ctr's error and, for pulls and pushes, the HTTP
 * dump: the status line and headers of the response that failed are in it.
 */
export class CtrCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | string | null,
    readonly stderr: string,
    readonly requests: CtrRequest[],
  ) {
    const responses = stderr.split('\n').filter((line) => /msg="HTTP\/1\.1 [45]\d\d/.test(line));
    const errors = stderr.split('\n').filter((line) => line.trim() !== '' && !line.includes('level=info'));
    const lastRequests = requests.slice(-8).map((r) => `  ${r.method} ${r.path}`);
    super(
      [
        `ctr ${args.join(' ')} failed (${exitCode}):`,
        ...errors,
        'error responses:',
        ...responses,
        'last requests:',
        ...lastRequests,
      ].join('\n'),
    );
    this.name = 'CtrCommandError';
  }
}

/**
 * `--http-dump` logs each request line as `level=info msg="METHOD PATH HTTP/1.1"`. It also dumps
 * bodies, and concurrent blob fetches interleave in its buffer, so a request line can follow a
 * stray piece of gzip on the same log line: match it anywhere in the line.
 */
const REQUEST_LOG_LINE = /(GET|HEAD|POST|PUT|PATCH|DELETE) (\/v2\/\S*) HTTP\/1\.1"/;

export function parseCtrRequests(httpDump: string): CtrRequest[] {
  const requests: CtrRequest[] = [];
  for (const line of httpDump.split('\n')) {
    const match = REQUEST_LOG_LINE.exec(line);
    if (match?.[1] && match[2]) requests.push({ method: match[1], path: match[2] });
  }
  return requests;
}

/** ctr prints the size with a space in it (`130.1 KiB`), so the table is read with a pattern. */
const IMAGE_ROW = /^(\S+)\s+(\S+)\s+(sha256:[0-9a-f]{64})\s+\S+ \S+\s+(\S+)\s+/;

export function parseImageList(table: string): CtrImage[] {
  return table
    .split('\n')
    .slice(1)
    .flatMap((line) => {
      const match = IMAGE_ROW.exec(line);
      if (!match?.[1] || !match[2] || !match[3] || !match[4]) return [];
      return [{ ref: match[1], mediaType: match[2], digest: match[3], platforms: match[4].split(',') }];
    });
}

/** sun_path holds 108 bytes; a long TMPDIR would make the socket path unusable. */
const MAX_SOCKET_PATH = 100;

export async function startContainerd(opts: ContainerdOptions): Promise<Containerd> {
  const containerdBinary = opts.containerdBinary ?? '/usr/bin/containerd';
  const ctrBinary = opts.ctrBinary ?? '/usr/bin/ctr';
  await assertExecutable(containerdBinary, 'containerd');
  await assertExecutable(ctrBinary, 'containerd');

  const address = path.join(opts.workDir, 'containerd.sock');
  if (address.length > MAX_SOCKET_PATH) throw new Error(`containerd socket path too long for a unix socket: ${address}`);
  const root = path.join(opts.workDir, 'root');
  const state = path.join(opts.workDir, 'state');
  const optDir = path.join(opts.workDir, 'opt');
  await mkdir(root, { recursive: true });
  await mkdir(state, { recursive: true });
  await mkdir(optDir, { recursive: true });
  const toml = (value: string) => JSON.stringify(value);
  const configPath = path.join(opts.workDir, 'config.toml');
  await writeFile(
    configPath,
    [
      'version = 2',
      `root = ${toml(root)}`,
      `state = ${toml(state)}`,
      // CRI would want CNI and a runtime; the snapshotters below only log why they cannot load.
      'disabled_plugins = [',
      '  "io.containerd.grpc.v1.cri",',
      '  "io.containerd.snapshotter.v1.aufs",',
      '  "io.containerd.snapshotter.v1.btrfs",',
      '  "io.containerd.snapshotter.v1.devmapper",',
      '  "io.containerd.snapshotter.v1.zfs",',
      ']',
      '[grpc]',
      `  address = ${toml(address)}`,
      '[ttrpc]',
      `  address = ${toml(`${address}.ttrpc`)}`,
      '[debug]',
      '  address = ""',
      '  level = "warn"',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${toml(optDir)}`,
      '',
    ].join('\n'),
  );

  const service = startServiceProcess('containerd', containerdBinary, ['--config', configPath]);
  const stop = () => service.stop();

  const namespace = opts.namespace ?? 'meridian-e2e';
  function ctr(args: readonly string[]): Promise<CtrResult> {
    const fullArgs = ['--address', address, '--namespace', namespace, ...args];
    return new Promise((resolve, reject) => {
      execFile(
        ctrBinary,
        fullArgs,
        {
          encoding: 'utf8',
          // No proxy, and a HOME with no docker credentials.
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.workDir },
          timeout: opts.timeoutMs ?? 60_000,
          maxBuffer: 64 * 1024 * 1024,
        },
        (error, stdout, stderr) => {
          if (opts.echoDebugLog) process.stderr.write(stderr);
          const requests = parseCtrRequests(stderr);
          if (error) {
            reject(new CtrCommandError(fullArgs, error.code ?? error.signal ?? null, stderr || error.message, requests));
            return;
          }
          resolve({ stdout, stderr, requests });
        },
      );
    });
  }

  // The daemon serves once `ctr version` reaches it over the socket.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const failure = service.failure();
    if (failure) throw new Error(failure);
    try {
      await ctr(['--connect-timeout', '1s', 'version']);
      break;
    } catch {
      // Not serving yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`containerd did not serve on ${address} within 15s:\n${service.output()}`);
    }
    await sleep(100);
  }

  return {
    address,
    pid: service.child.pid!,
    async pull(reference, pullOpts = {}) {
      return ctr([
        'images', 'pull', '--plain-http', '--http-dump', '--snapshotter', 'native',
        ...(pullOpts.allPlatforms ? ['--all-platforms'] : []),
        reference,
      ]);
    },
    async push(reference) {
      return ctr(['images', 'push', '--plain-http', '--http-dump', reference]);
    },
    async tag(source, target) {
      await ctr(['images', 'tag', source, target]);
    },
    async listImages() {
      return parseImageList((await ctr(['images', 'ls'])).stdout);
    },
    async listContent() {
      return (await ctr(['content', 'ls', '--quiet'])).stdout.split('\n').filter((line) => line.trim() !== '');
    },
    ctr,
    stop,
  };
}
