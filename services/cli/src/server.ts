import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClusterHttp, readPemFile, type ClusterHttp } from '@meridian/proto/cluster-http';
import { UsageError } from './errors.js';

/** The checkout the CLI runs from: `pnpm meridian` works from anywhere inside it. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where `pnpm cluster up` records the cluster it started. */
export const CLUSTER_FILE = path.join('.meridian', 'cluster.json');

export interface ServerSources {
  /** --server */
  option?: string;
  /** MERIDIAN_SERVER */
  env?: string;
  /** Folders whose .meridian/cluster.json may name the control plane, in order. */
  folders: string[];
}

/**
 * The control plane's base URL: --server, else MERIDIAN_SERVER, else `controlPlane` in the first
 * .meridian/cluster.json found in `folders`. A value that is not an http(s) URL, or none at all,
 * is a UsageError naming where it came from.
 */
export async function resolveServer(sources: ServerSources): Promise<string> {
  if (sources.option) return checkedUrl(sources.option, '--server');
  if (sources.env) return checkedUrl(sources.env, 'MERIDIAN_SERVER');
  const tried: string[] = [];
  for (const folder of [...new Set(sources.folders.map((folder) => path.resolve(folder)))]) {
    const file = path.join(folder, CLUSTER_FILE);
    tried.push(file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new UsageError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    let controlPlane: unknown;
    try {
      controlPlane = (JSON.parse(text) as { controlPlane?: unknown }).controlPlane;
    } catch {
      throw new UsageError(`${file} is not JSON: fix it, or pass --server`);
    }
    if (typeof controlPlane !== 'string') throw new UsageError(`${file} names no "controlPlane" URL: pass --server or set MERIDIAN_SERVER`);
    return checkedUrl(controlPlane, `"controlPlane" in ${file}`);
  }
  throw new UsageError(`no control plane given: pass --server URL, set MERIDIAN_SERVER, or start a cluster (pnpm cluster up writes ${tried.join(' or ')})`);
}

/**
 * The administrator's password of the cluster `pnpm cluster up` started, when `server` is its
 * control plane: read from the file its cluster.json names (`adminPasswordFile`, mode 0600).
 * Undefined when there is no such cluster or file.
 */
export async function clusterAdminPassword(server: string, folders: string[]): Promise<string | undefined> {
  const passwordFile = (await startedCluster(server, folders))?.adminPasswordFile;
  if (typeof passwordFile !== 'string') return undefined;
  return (await readFile(passwordFile, 'utf8').catch(() => undefined))?.trim() || undefined;
}

export interface TrustSources {
  /** --ca */
  option?: string;
  /** MERIDIAN_TLS_CA */
  env?: string;
  /** Folders whose .meridian/cluster.json may name the authority of the cluster at `server`. */
  folders: string[];
}

/**
 * The command's HTTP client. It trusts, besides the system's authorities, the PEM file of --ca,
 * else MERIDIAN_TLS_CA, else the authority of the cluster `pnpm cluster up --tls` started when
 * `server` is its control plane (`caFile` in its cluster.json). A file that cannot be read is a
 * UsageError naming where it came from; a certificate nothing trusted signed fails the request
 * with a line naming --ca and MERIDIAN_TLS_CA.
 */
export async function clusterHttpFor(server: string, sources: TrustSources): Promise<ClusterHttp> {
  const named = sources.option ? { file: sources.option, source: '--ca' } : sources.env ? { file: sources.env, source: 'MERIDIAN_TLS_CA' } : undefined;
  const clusterCa = named ? undefined : (await startedCluster(server, sources.folders))?.caFile;
  const trusted = named ?? (typeof clusterCa === 'string' ? { file: clusterCa, source: `"caFile" in ${CLUSTER_FILE}` } : undefined);
  const ca = trusted ? await readPemFile(trusted.file, trusted.source, (message) => new UsageError(message)) : undefined;
  return createClusterHttp({ ...(ca ? { ca } : {}), trustSetting: '--ca FILE or MERIDIAN_TLS_CA' });
}

/** What the cluster.json of `pnpm cluster up` says, when `server` is the control plane it names. */
async function startedCluster(server: string, folders: string[]): Promise<{ adminPasswordFile?: unknown; caFile?: unknown } | undefined> {
  for (const folder of [...new Set(folders.map((folder) => path.resolve(folder)))]) {
    const state = await readFile(path.join(folder, CLUSTER_FILE), 'utf8').then(
      (text) => JSON.parse(text) as { controlPlane?: unknown; adminPasswordFile?: unknown; caFile?: unknown },
      () => undefined,
    );
    if (state && state.controlPlane === server) return state;
  }
  return undefined;
}

function checkedUrl(value: string, source: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${source}: "${value}" is not a URL (e.g. http://127.0.0.1:5100)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${source}: "${value}" is not an http:// or https:// URL`);
  return url.toString().replace(/\/+$/, '');
}
