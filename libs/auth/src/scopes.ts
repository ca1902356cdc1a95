/**
 * Scopes and access claims of the Docker token spec ("Token Authentication Specification",
 * "Token Scope Documentation"; the same the OCI clients, containerd and podman, speak). A client
 * asks the token endpoint for `scope=repository:team/app:pull,push`; the token's `access` claim
 * lists what was granted, `[{type:'repository', name:'team/app', actions:['pull','push']}]`.
 */
import type { RouteAction } from '@meridian/oci';
import { matchesRepositoryPattern, type Permissions, type RepositoryAction } from './permissions.js';

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** What a token grants: the spec's access entries, and the repositories its `_catalog` shows. */
export interface Grant {
  access: AccessEntry[];
  /** Repository patterns `_catalog` lists for this token (Meridian's own claim; the spec has none). */
  catalog: string[];
}

/**
 * Parses one `scope` parameter: `TYPE[(CLASS)]:NAME:ACTION[,ACTION...]`. The name may itself hold
 * a `:` (a registry host with a port), so type and actions are taken from either end. Undefined
 * for a scope that is not one.
 */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = scope.slice(0, first).replace(/\(.*\)$/, '');
  const name = scope.slice(first + 1, last);
  const actions = scope.slice(last + 1).split(',').filter(Boolean);
  if (!name || actions.length === 0) return undefined;
  return { type, name, actions };
}

export function formatScope(entry: AccessEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(',')}`;
}

/**
 * What an identity is granted of what it asked for: each requested repository scope narrowed to
 * the actions its permissions allow (an entry with none left is dropped, as Distribution's token
 * servers do: the client then meets a 403 where it tries). `registry:catalog:*` is granted to
 * anyone who may read some repository's metadata.
 */
export function grantRequested(permissions: Permissions, requested: readonly AccessEntry[]): Grant {
  const access: AccessEntry[] = [];
  const catalog = permissions.catalogPatterns();
  for (const entry of requested) {
    if (entry.type === 'repository') {
      const allowed = permissions.repositoryActions(entry.name);
      const actions = entry.actions.flatMap((action) => expandAction(action)).filter((action) => allowed.has(action));
      if (actions.length > 0) access.push({ type: 'repository', name: entry.name, actions: [...new Set(actions)] });
    } else if (entry.type === 'registry' && entry.name === 'catalog' && catalog.length > 0) {
      access.push({ type: 'registry', name: 'catalog', actions: ['*'] });
    }
  }
  return { access, catalog };
}

/** `*` asks for every action on the repository (Docker's token servers read it so). */
function expandAction(action: string): RepositoryAction[] {
  if (action === '*') return ['pull', 'push', 'delete'];
  return action === 'pull' || action === 'push' || action === 'delete' ? [action] : [];
}

/** Whether a token's grant allows one registry action on one repository. */
export function grantAllows(grant: Grant, repository: string, action: RepositoryAction): boolean {
  return grant.access.some((entry) => entry.type === 'repository' && entry.name === repository && entry.actions.includes(action));
}

/**
 * Whether a grant lets `_catalog` be read, and which repositories it shows. The catalog is
 * readable by any authenticated identity; it lists only what the grant's patterns match.
 */
export function catalogFilter(grant: Pick<Grant, 'catalog'>): (repository: string) => boolean {
  return (repository) => grant.catalog.some((pattern) => matchesRepositoryPattern(pattern, repository));
}

/**
 * The scope a client must ask for to do a route's action on a repository, for the
 * `WWW-Authenticate` challenge of a refused request. Undefined for routes without a repository.
 */
export function requiredScope(action: RouteAction, repository: string | undefined): string | undefined {
  if (action === 'catalog') return 'registry:catalog:*';
  if (repository === undefined || action === 'none') return undefined;
  return formatScope({ type: 'repository', name: repository, actions: [action] });
}
