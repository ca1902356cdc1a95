/**
 * Wrappers around Debian's podman and buildah for e2e tests against plain-HTTP registries on
 * loopback. Both tools share one private image store (the `vfs` driver, so no overlay mounts or
 * FUSE), and every setting they would otherwise take from the host lives under a private
 * directory:
 *
 *   HOME/root, HOME/runroot          the containers/storage graph root and run root
 *   HOME/storage.conf                CONTAINERS_STORAGE_CONF: the same, for anything reading config
 *   HOME/containers.conf             CONTAINERS_CONF: libpod tmp dir, copy tmp dir, no events log,
 *                                    cgroupfs, CNI config dir (nothing under /run or /etc)
 *   HOME/registries.conf             CONTAINERS_REGISTRIES_CONF: empty (no mirrors, no insecure list)
 *   HOME/.config/containers/policy.json
 *                                    accept anything: containers/image reads $HOME's policy before
 *                                    /etc's, and `podman manifest push` has no --signature-policy
 *   HOME/.config/containers/registries.d
 *                                    sigstore lookaside inside HOME, not /var/lib/containers/sigstore
 *   HOME/auth.json                   REGISTRY_AUTH_FILE: no credentials
 *
 * One host path remains: as root, containers/image keeps its blob-info cache in
 * /var/lib/containers/cache whatever the configuration says. It only remembers where blobs were
 * seen, so at worst a client tries a cross-repository mount or a HEAD it would not otherwise make;
 * tests build images from random bytes so nothing pushed here is known to it beforehand.
 *
 * Nothing here runs a container: building is `buildah from scratch` + `copy` + `config` +
 * `commit`, and reading files back is `podman image mount`, which with vfs is a plain directory
 * (it needs root, as the rest of the e2e machine does).
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRequests, type SkopeoRequest } from './skopeo.js';

export interface PodmanOptions {
  /** Defaults to /usr/bin/podman. */
  podmanBinary?: string;
  /** Defaults to /usr/bin/buildah. */
  buildahBinary?: string;
  /** Echo podman's debug log (every HTTP request it makes) to this process's stderr. */
  echoDebugLog?: boolean;
  /** Kills a command that hangs (a registry that never answers) instead of waiting for the test timeout. */
  timeoutMs?: number;
}

/** One HTTP request podman made, from its debug log (containers/image logs them as skopeo does). */
export type PodmanRequest = SkopeoRequest;

export interface ToolResult {
  stdout: string;
  /** With podman, `--log-level debug` on every call: a log of every request it made. */
  stderr: string;
  requests: PodmanRequest[];
}

/** The subset of `podman image inspect` output the tests look at. */
export interface PodmanImage {
  /** The config digest's hex, without `sha256:`. */
  Id: string;
  /** The digest of the manifest (or index) the image was pulled by or pushed as. */
  Digest: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  ManifestType: string;
  Config: { Cmd?: string[]; Env?: string[]; Labels?: Record<string, string> };
  /** Uncompressed layer digests (diff_ids). */
  RootFS: { Type: string; Layers: string[] };
}

/** One `buildah copy` into the image: file name (relative, no directories) to bytes. */
export interface LayerFiles {
  /** The directory inside the image the files land in, e.g. `/srv/meridian`. */
  destination: string;
  files: Record<string, string | Buffer>;
}

export interface BuildOptions {
  /** Name the committed image is tagged with in local storage, e.g. `localhost/meridian-e2e:v1`. */
  name: string;
  /** One layer per entry, in order, starting from `scratch`. */
  layers: LayerFiles[];
  cmd: string[];
  labels: Record<string, string>;
  env?: string[];
  os?: string;
  architecture?: string;
}

export interface BuiltImage {
  name: string;
  /** `sha256:` + the config digest: podman's image id, and the config digest of any push. */
  configDigest: string;
}

export interface PushOptions {
  /** `--format`: `oci` or `v2s2` (Docker image manifest v2 schema 2). */
  format: 'oci' | 'v2s2';
}

export interface PushResult extends ToolResult {
  /** The manifest digest podman wrote with `--digestfile`. */
  digest: string;
}

export interface PullOptions {
  /** `--arch`: which instance of an index to pull. */
  architecture?: string;
}

/**
 * A tool run that exited non-zero. The message keeps what a reader needs to tell which request
 * failed: the tool's own error lines and the last requests it made.
 */
export class ContainerToolError extends Error {
  constructor(
    readonly tool: string,
    readonly args: readonly string[],
    readonly exitCode: number | string | null,
    readonly stderr: string,
    readonly requests: PodmanRequest[],
  ) {
    const errors = stderr.split('\n').filter((line) => line.trim() !== '' && !line.includes('level=debug'));
    const lastRequests = requests.slice(-8).map((r) => `  ${r.method} ${r.url}`);
    super(`${tool} ${args.join(' ')} failed (${exitCode}):\n${errors.join('\n')}\nlast requests:\n${lastRequests.join('\n')}`);
    this.name = 'ContainerToolError';
  }
}

export interface Podman {
  /** Builds an image from scratch with buildah, one commit per layer; returns its config digest. */
  build(opts: BuildOptions): Promise<BuiltImage>;
  /** `podman push --tls-verify=false --format F SOURCE HOST/REPO:TAG`. */
  push(source: string, destination: string, opts: PushOptions): Promise<PushResult>;
  /** `podman manifest create LIST` and `podman manifest add LIST` for each local image. */
  createManifestList(list: string, images: string[]): Promise<void>;
  /** `podman manifest push --all --format oci LIST docker://HOST/REPO:TAG`. */
  pushManifestList(list: string, destination: string): Promise<PushResult>;
  /** `podman pull --tls-verify=false REFERENCE`. */
  pull(reference: string, opts?: PullOptions): Promise<ToolResult>;
  /** `podman image inspect`. */
  inspect(reference: string): Promise<PodmanImage>;
  /** `podman search --list-tags`: the tags of one repository. */
  listTags(repository: string): Promise<string[]>;
  /** Every image in local storage, by id. */
  listImageIds(): Promise<string[]>;
  /** `podman rmi --all --force`: local storage holds no image afterwards. */
  removeAllImages(): Promise<void>;
  /** `podman image mount`, then reads `files` (paths inside the image) and unmounts. */
  readImageFiles(reference: string, files: string[]): Promise<Record<string, Buffer>>;
  /** Any other podman invocation; global options are added in front of `args`. */
  podman(args: readonly string[]): Promise<ToolResult>;
  /** Any other buildah invocation; global options are added in front of `args`. */
  buildah(args: readonly string[]): Promise<ToolResult>;
  /** Removes the private directory with the image store in it. */
  dispose(): Promise<void>;
}

const ACCEPT_ANYTHING_POLICY = { default: [{ type: 'insecureAcceptAnything' }] };

/** Fails loudly, never skips, when a client is not installed. */
export async function assertExecutable(binary: string, packageName: string): Promise<void> {
  try {
    await access(binary, constants.X_OK);
  } catch {
    throw new Error(`${binary} is not installed (Debian package ${packageName}): run \`bash deploy/bootstrap.sh\``);
  }
}

export async function createPodman(opts: PodmanOptions = {}): Promise<Podman> {
  const podmanBinary = opts.podmanBinary ?? '/usr/bin/podman';
  const buildahBinary = opts.buildahBinary ?? '/usr/bin/buildah';
  await assertExecutable(podmanBinary, 'podman');
  await assertExecutable(buildahBinary, 'buildah');

  const home = await mkdtemp(path.join(tmpdir(), 'meridian-podman-'));
  const dirs = {
    root: path.join(home, 'root'),
    runroot: path.join(home, 'runroot'),
    libpodTmp: path.join(home, 'libpod-tmp'),
    tmp: path.join(home, 'tmp'),
    cni: path.join(home, 'cni'),
    userConfig: path.join(home, '.config', 'containers'),
    context: path.join(home, 'context'),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const registriesConfPath = path.join(home, 'registries.conf');
  const authFilePath = path.join(home, 'auth.json');
  const storageConfPath = path.join(home, 'storage.conf');
  const containersConfPath = path.join(home, 'containers.conf');
  // TOML basic strings take JSON's escapes for the characters a temp path can hold.
  const toml = (value: string) => JSON.stringify(value);
  await writeFile(registriesConfPath, '');
  await writeFile(authFilePath, JSON.stringify({ auths: {} }));
  await writeFile(
    storageConfPath,
    ['[storage]', 'driver = "vfs"', `graphroot = ${toml(dirs.root)}`, `runroot = ${toml(dirs.runroot)}`, ''].join('\n'),
  );
  await writeFile(
    containersConfPath,
    [
      '[engine]',
      `tmp_dir = ${toml(dirs.libpodTmp)}`,
      `image_copy_tmp_dir = ${toml(dirs.tmp)}`,
      `static_dir = ${toml(path.join(dirs.root, 'libpod'))}`,
      `volume_path = ${toml(path.join(dirs.root, 'volumes'))}`,
      'events_logger = "none"',
      'cgroup_manager = "cgroupfs"',
      '[network]',
      // CNI reads its config from this directory; netavark would take /run/containers/networks.
      'network_backend = "cni"',
      `network_config_dir = ${toml(dirs.cni)}`,
      '',
    ].join('\n'),
  );
  await writeFile(path.join(dirs.userConfig, 'policy.json'), JSON.stringify(ACCEPT_ANYTHING_POLICY));
  await mkdir(path.join(dirs.userConfig, 'registries.d'));
  const lookaside = `file://${path.join(home, 'sigstore')}`;
  await writeFile(
    path.join(dirs.userConfig, 'registries.d', 'default.yaml'),
    `default-docker:\n  lookaside: ${lookaside}\n  lookaside-staging: ${lookaside}\n`,
  );

  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_RUNTIME_DIR: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    TMPDIR: dirs.tmp,
    CONTAINERS_CONF: containersConfPath,
    CONTAINERS_STORAGE_CONF: storageConfPath,
    CONTAINERS_REGISTRIES_CONF: registriesConfPath,
    // buildah's older name for the same file.
    REGISTRIES_CONFIG_PATH: registriesConfPath,
    REGISTRY_AUTH_FILE: authFilePath,
    DOCKER_CONFIG: path.join(home, 'docker'),
  };
  const storageArgs = ['--root', dirs.root, '--runroot', dirs.runroot, '--storage-driver', 'vfs'];
  // --log-level debug always on podman: the request log is what tests assert on and what a
  // failure report needs. buildah only talks to local storage here, so it stays quiet.
  const podmanArgs = [
    ...storageArgs,
    '--tmpdir', dirs.libpodTmp,
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'none',
    '--log-level', 'debug',
  ];

  function exec(tool: string, binary: string, args: readonly string[]): Promise<ToolResult> {
    return new Promise((resolve, reject) => {
      execFile(
        binary,
        args,
        { encoding: 'utf8', env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (opts.echoDebugLog) process.stderr.write(stderr);
          const requests = parseRequests(stderr);
          if (error) {
            reject(new ContainerToolError(tool, args, error.code ?? error.signal ?? null, stderr || error.message, requests));
            return;
          }
          resolve({ stdout, stderr, requests });
        },
      );
    });
  }
  const podman = (args: readonly string[]) => exec('podman', podmanBinary, [...podmanArgs, ...args]);
  const buildah = (args: readonly string[]) => exec('buildah', buildahBinary, [...storageArgs, ...args]);

  let contexts = 0;
  let digestFiles = 0;
  const readDigestFile = async (file: string) => (await readFile(file, 'utf8')).trim();

  return {
    async build(buildOpts) {
      let base = 'scratch';
      let configDigest = '';
      for (const [i, layer] of buildOpts.layers.entries()) {
        const context = path.join(dirs.context, String(++contexts));
        await mkdir(context);
        for (const [name, content] of Object.entries(layer.files)) await writeFile(path.join(context, name), content);
        const container = (await buildah(['from', '--pull=never', base])).stdout.trim();
        try {
          // `copy DIR DEST` copies the directory's contents into DEST.
          await buildah(['copy', container, context, layer.destination]);
          const last = i === buildOpts.layers.length - 1;
          if (last) {
            await buildah([
              'config',
              '--cmd', JSON.stringify(buildOpts.cmd),
              ...Object.entries(buildOpts.labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]),
              ...(buildOpts.env ?? []).flatMap((entry) => ['--env', entry]),
              '--os', buildOpts.os ?? 'linux',
              '--arch', buildOpts.architecture ?? 'amd64',
              container,
            ]);
          }
          const iidFile = path.join(home, `iid-${contexts}`);
          const name = last ? [buildOpts.name] : [];
          await buildah(['commit', '--quiet', '--format', 'oci', '--iidfile', iidFile, container, ...name]);
          configDigest = await readDigestFile(iidFile);
          base = configDigest.replace(/^sha256:/, '');
        } finally {
          await buildah(['rm', container]);
        }
      }
      return { name: buildOpts.name, configDigest };
    },
    async push(source, destination, pushOpts) {
      const digestFile = path.join(home, `digest-${++digestFiles}`);
      const result = await podman([
        'push', '--tls-verify=false', '--format', pushOpts.format, '--digestfile', digestFile, source, destination,
      ]);
      return { ...result, digest: await readDigestFile(digestFile) };
    },
    async createManifestList(list, images) {
      await podman(['manifest', 'create', list]);
      for (const image of images) await podman(['manifest', 'add', list, `containers-storage:${image}`]);
    },
    async pushManifestList(list, destination) {
      const digestFile = path.join(home, `digest-${++digestFiles}`);
      const result = await podman([
        'manifest', 'push', '--all', '--format', 'oci', '--tls-verify=false', '--digestfile', digestFile,
        list, `docker://${destination}`,
      ]);
      return { ...result, digest: await readDigestFile(digestFile) };
    },
    async pull(reference, pullOpts = {}) {
      return podman([
        'pull', '--tls-verify=false', ...(pullOpts.architecture ? ['--arch', pullOpts.architecture] : []), reference,
      ]);
    },
    async inspect(reference) {
      const { stdout } = await podman(['image', 'inspect', reference]);
      const [image] = JSON.parse(stdout) as PodmanImage[];
      if (!image) throw new Error(`podman image inspect ${reference}: no image`);
      return image;
    },
    async listTags(repository) {
      const { stdout } = await podman(['search', '--list-tags', '--tls-verify=false', '--format', 'json', repository]);
      return (JSON.parse(stdout) as { Tags: string[] | null }[]).flatMap((entry) => entry.Tags ?? []);
    },
    async listImageIds() {
      const { stdout } = await podman(['images', '--all', '--format', 'json']);
      return (JSON.parse(stdout) as { Id: string }[]).map((image) => image.Id);
    },
    async removeAllImages() {
      await podman(['rmi', '--all', '--force']);
    },
    async readImageFiles(reference, files) {
      const mountPoint = (await podman(['image', 'mount', reference])).stdout.trim();
      try {
        const contents: Record<string, Buffer> = {};
        for (const file of files) contents[file] = await readFile(path.join(mountPoint, file));
        return contents;
      } finally {
        await podman(['image', 'unmount', reference]);
      }
    },
    podman,
    buildah,
    async dispose() {
      await rm(home, { recursive: true, force: true });
    },
  };
}
