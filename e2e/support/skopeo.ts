/**
 * A thin wrapper around the skopeo CLI (Debian's /usr/bin/skopeo) for e2e tests against plain-HTTP
 * registries on loopback. Every call runs through execFile (no shell) with its own policy,
 * registries.conf, registries.d, auth file and tmpdir under a private directory, so nothing on the
 * host (/etc/containers, ~/.docker/config.json, $XDG_RUNTIME_DIR) can change what a test sees.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SkopeoOptions {
  /** Defaults to /usr/bin/skopeo. */
  binary?: string;
  /** Echo skopeo's debug log (every HTTP request it makes) to this process's stderr. */
  echoDebugLog?: boolean;
  /** Kills a skopeo that hangs (a registry that never answers) instead of waiting for the test timeout. */
  timeoutMs?: number;
}

export interface CopyOptions {
  /** `--all`: copy every instance of an index, so the index itself (and its digest) is copied. */
  all?: boolean;
  /** `--preserve-digests`: fail rather than convert or recompress anything that would change a digest. */
  preserveDigests?: boolean;
}

/** One HTTP request skopeo made, as its debug log records it. */
export interface SkopeoRequest {
  method: string;
  url: string;
}

export interface SkopeoResult {
  stdout: Buffer;
  /** skopeo's stderr: with `--debug`, which every call passes, a log of every request it made. */
  stderr: string;
  requests: SkopeoRequest[];
}

export interface CopyResult {
  /** The progress lines (`Copying blob sha256:...`). */
  output: string;
  requests: SkopeoRequest[];
}
/** The subset of `skopeo inspect` (non-raw) output the tests look at. */
export interface SkopeoInspectOutput {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
  LayersData?: { MIMEType: string; Digest: string; Size: number }[];
}

export interface InspectOptions {
  /** `--override-os` / `--override-arch`: which instance of an index to describe. */
  os?: string;
  architecture?: string;
}

/**
 * A skopeo run that exited non-zero. `stderr` is the whole debug log; the message keeps what a
 * reader needs to tell which request failed: skopeo's own error and the last requests it made.
 */
export class SkopeoCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | string | null,
    readonly stderr: string,
    readonly requests: SkopeoRequest[],
  ) {
    const errors = stderr.split('\n').filter((line) => line.trim() !== '' && !line.includes('level=debug'));
    const lastRequests = requests.slice(-8).map((r) => `  ${r.method} ${r.url}`);
    super(
      `skopeo ${args.join(' ')} failed (${exitCode}):\n${errors.join('\n')}\nlast requests:\n${lastRequests.join('\n')}`,
    );
    this.name = 'SkopeoCommandError';
  }
}

export interface Skopeo {
  /** `skopeo copy SRC DEST`; transports are part of the references (`oci:DIR:TAG`, `docker://HOST/REPO:TAG`). */
  copy(source: string, destination: string, opts?: CopyOptions): Promise<CopyResult>;
  /** `skopeo inspect --raw`: the manifest bytes exactly as the registry served them. */
  inspectRaw(reference: string): Promise<Buffer>;
  /** `skopeo inspect`: the parsed summary of one image (an index is resolved to one platform). */
  inspect(reference: string, opts?: InspectOptions): Promise<SkopeoInspectOutput>;
  /** `skopeo list-tags docker://HOST/REPO`. */
  listTags(repository: string): Promise<string[]>;
  /** `skopeo delete docker://HOST/REPO@DIGEST` (or `:TAG`, which skopeo resolves to a digest first). */
  delete(reference: string): Promise<SkopeoResult>;
  /** Any other invocation; global options are added in front of `args`. */
  run(args: readonly string[]): Promise<SkopeoResult>;
  /** Removes the private config directory. */
  dispose(): Promise<void>;
}

/** The policy skopeo requires before any copy; tests push content they built themselves. */
const ACCEPT_ANYTHING_POLICY = { default: [{ type: 'insecureAcceptAnything' }] };

/** containers/image logs each request as `level=debug msg="METHOD URL"`. */
const REQUEST_LOG_LINE = /level=debug msg="(GET|HEAD|POST|PUT|PATCH|DELETE) (https?:\/\/[^"\s]+)"/;

export function parseRequests(debugLog: string): SkopeoRequest[] {
  const requests: SkopeoRequest[] = [];
  for (const line of debugLog.split('\n')) {
    const match = REQUEST_LOG_LINE.exec(line);
    if (match?.[1] && match[2]) requests.push({ method: match[1], url: match[2] });
  }
  return requests;
}

export async function createSkopeo(opts: SkopeoOptions = {}): Promise<Skopeo> {
  const binary = opts.binary ?? '/usr/bin/skopeo';
  const home = await mkdtemp(path.join(tmpdir(), 'meridian-skopeo-'));
  const policyPath = path.join(home, 'policy.json');
  const registriesConfPath = path.join(home, 'registries.conf');
  const registriesDir = path.join(home, 'registries.d');
  const authFilePath = path.join(home, 'auth.json');
  const workTmp = path.join(home, 'tmp');
  await writeFile(policyPath, JSON.stringify(ACCEPT_ANYTHING_POLICY));
  // Empty: no mirrors, no host-configured insecure registries. (skopeo has no flag for the
  // registries.conf.d drop-in directory; the host's holds only short-name aliases, unused here.)
  await writeFile(registriesConfPath, '');
  await writeFile(authFilePath, JSON.stringify({ auths: {} }));
  await mkdir(registriesDir);
  await mkdir(workTmp);
  // Without this, containers/image reads and "deletes" signatures under /var/lib/containers/sigstore.
  const lookaside = `file://${path.join(home, 'sigstore')}`;
  await writeFile(
    path.join(registriesDir, 'default.yaml'),
    `default-docker:\n  lookaside: ${lookaside}\n  lookaside-staging: ${lookaside}\n`,
  );

  // --debug always: the request log is what tests assert on (HEAD before upload) and what a
  // failure report needs (which request the registry refused).
  const globalArgs = [
    '--policy', policyPath,
    '--registries-conf', registriesConfPath,
    '--registries.d', registriesDir,
    '--tmpdir', workTmp,
    '--debug',
  ];
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    // containers/image falls back to $XDG_RUNTIME_DIR and ~/.docker for credentials; point both at nothing.
    XDG_RUNTIME_DIR: home,
    REGISTRY_AUTH_FILE: authFilePath,
    DOCKER_CONFIG: path.join(home, 'docker'),
    CONTAINERS_REGISTRIES_CONF: registriesConfPath,
  };

  function run(args: readonly string[]): Promise<SkopeoResult> {
    return new Promise((resolve, reject) => {
      execFile(
        binary,
        [...globalArgs, ...args],
        { encoding: 'buffer', env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderrBytes) => {
          const stderr = stderrBytes.toString('utf8');
          if (opts.echoDebugLog) process.stderr.write(stderr);
          const requests = parseRequests(stderr);
          if (error) {
            reject(new SkopeoCommandError(args, error.code ?? error.signal ?? null, stderr || error.message, requests));
            return;
          }
          resolve({ stdout, stderr, requests });
        },
      );
    });
  }

  // Plain HTTP on loopback: every docker:// side gets tls-verify=false, which lets containers/image
  // fall back from HTTPS to HTTP. The oci: side ignores the flags.
  return {
    async copy(source, destination, copyOpts = {}) {
      const args = ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-no-creds', '--dest-no-creds'];
      if (copyOpts.all) args.push('--all');
      if (copyOpts.preserveDigests) args.push('--preserve-digests');
      const result = await run([...args, source, destination]);
      return { output: result.stdout.toString('utf8'), requests: result.requests };
    },
    async inspectRaw(reference) {
      return (await run(['inspect', '--tls-verify=false', '--no-creds', '--raw', reference])).stdout;
    },
    async inspect(reference, inspectOpts = {}) {
      // Platform overrides are global options, so they go before the subcommand.
      const overrides = [
        ...(inspectOpts.os ? ['--override-os', inspectOpts.os] : []),
        ...(inspectOpts.architecture ? ['--override-arch', inspectOpts.architecture] : []),
      ];
      const { stdout } = await run([...overrides, 'inspect', '--tls-verify=false', '--no-creds', reference]);
      return JSON.parse(stdout.toString('utf8')) as SkopeoInspectOutput;
    },
    async listTags(repository) {
      const { stdout } = await run(['list-tags', '--tls-verify=false', '--no-creds', repository]);
      return (JSON.parse(stdout.toString('utf8')) as { Tags: string[] | null }).Tags ?? [];
    },
    async delete(reference) {
      return run(['delete', '--tls-verify=false', '--no-creds', reference]);
    },
    run,
    async dispose() {
      await rm(home, { recursive: true, force: true });
    },
  };
}

/**
 * Runs skopeo where it is expected to fail: the message of its failure (skopeo's own error and
 * the requests it made last). Throws if it succeeded, or failed other than by exiting non-zero.
 */
export async function skopeoFailure(skopeo: Skopeo, args: readonly string[]): Promise<string> {
  const outcome = await skopeo.run(args).then(
    () => undefined,
    (err: unknown) => err,
  );
  if (outcome === undefined) throw new Error(`skopeo ${args.join(' ')} succeeded where it should have failed`);
  if (!(outcome instanceof SkopeoCommandError)) throw outcome;
  return outcome.message;
}
