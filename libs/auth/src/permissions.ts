/**
 * What an identity may do, from its scope maps: repository patterns and the actions allowed on
 * them. Nothing here knows HTTP or SQL; the gateway asks these questions of an identity it has
 * already authenticated, and the token endpoint asks them to decide what a token grants.
 */

/** The actions a scope map grants, as the operator names them. */
export const SCOPE_MAP_ACTIONS = ['content/read', 'content/write', 'content/delete', 'metadata/read', 'metadata/write'] as const;
export type ScopeMapAction = (typeof SCOPE_MAP_ACTIONS)[number];

/** The actions of the Docker token spec's `repository:NAME:ACTIONS` scope, which the route table also uses. */
export type RepositoryAction = 'pull' | 'push' | 'delete';

/**
 * The registry action each scope-map action grants. `metadata/read` grants no repository action:
 * it is what puts a repository in the identity's `_catalog`. `metadata/write` has nothing to guard
 * yet (no writable repository attributes exist); it is accepted so scope maps can name it.
 */
const REGISTRY_ACTION: Record<ScopeMapAction, RepositoryAction | undefined> = {
  'content/read': 'pull',
  'content/write': 'push',
  'content/delete': 'delete',
  'metadata/read': undefined,
  'metadata/write': undefined,
};

export interface ScopeMap {
  name: string;
  /** Repository names, or patterns ending in `/*` (everything below that prefix) or `*` alone (every repository). */
  repositories: string[];
  actions: ScopeMapAction[];
}

/**
 * A pattern is a repository name, `PREFIX/*` (every repository whose name starts with `PREFIX/`,
 * at any depth) or `*` (every repository). A `*` anywhere else is refused when the scope map is
 * made (assertRepositoryPattern), so matching never meets one.
 */
export function matchesRepositoryPattern(pattern: string, repository: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('/*')) return repository.startsWith(pattern.slice(0, -1));
  return pattern === repository;
}

const PATTERN_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

/** Throws a RangeError naming what is wrong with a repository pattern. */
export function assertRepositoryPattern(pattern: string): void {
  if (pattern === '*') return;
  const name = pattern.endsWith('/*') ? pattern.slice(0, -2) : pattern;
  if (!name.split('/').every((component) => PATTERN_COMPONENT.test(component))) {
    throw new RangeError(`"${pattern}" is not a repository pattern: expected a repository name, NAME/* or *`);
  }
}

export function isScopeMapAction(value: string): value is ScopeMapAction {
  return (SCOPE_MAP_ACTIONS as readonly string[]).includes(value);
}

/**
 * The permissions of one authenticated identity. A user is an administrator and may do
 * everything (`all`); a token may do what its scope map allows.
 */
export class Permissions {
  private constructor(private readonly scopeMaps: readonly ScopeMap[] | 'all') {}

  static all(): Permissions {
    return new Permissions('all');
  }

  static of(scopeMaps: readonly ScopeMap[]): Permissions {
    return new Permissions(scopeMaps);
  }

  get isAdministrator(): boolean {
    return this.scopeMaps === 'all';
  }

  /** The registry actions allowed on one repository. */
  repositoryActions(repository: string): Set<RepositoryAction> {
    if (this.scopeMaps === 'all') return new Set(['pull', 'push', 'delete']);
    const allowed = new Set<RepositoryAction>();
    for (const map of this.scopeMaps) {
      if (!map.repositories.some((pattern) => matchesRepositoryPattern(pattern, repository))) continue;
      for (const action of map.actions) {
        const registryAction = REGISTRY_ACTION[action];
        if (registryAction) allowed.add(registryAction);
      }
    }
    return allowed;
  }

  /** The patterns of the repositories `_catalog` shows this identity: those it holds `metadata/read` on. */
  catalogPatterns(): string[] {
    if (this.scopeMaps === 'all') return ['*'];
    return this.scopeMaps.filter((map) => map.actions.includes('metadata/read')).flatMap((map) => map.repositories);
  }
}

/**
 * The subject of an access token issued without credentials (anonymous pull): outside the
 * identity name grammar, so no user or token can ever be it.
 */
export const ANONYMOUS_SUBJECT = '(anonymous)';

/** What a client without credentials may do where anonymous pull is on: pull any repository; push, delete and `_catalog` still need an identity. */
export const ANONYMOUS_PERMISSIONS = Permissions.of([{ name: 'anonymous', repositories: ['*'], actions: ['content/read'] }]);
