import { describe, expect, it } from 'vitest';
import { Permissions, assertRepositoryPattern, matchesRepositoryPattern } from './permissions.js';
import { catalogFilter, grantAllows, grantRequested, parseScope, requiredScope } from './scopes.js';

describe('repository patterns', () => {
  it('match a name exactly, everything below PREFIX/*, or everything for *', () => {
    expect(matchesRepositoryPattern('team-a/app', 'team-a/app')).toBe(true);
    expect(matchesRepositoryPattern('team-a/app', 'team-a/app2')).toBe(false);
    expect(matchesRepositoryPattern('team-a/*', 'team-a/app')).toBe(true);
    expect(matchesRepositoryPattern('team-a/*', 'team-a/x/y')).toBe(true);
    expect(matchesRepositoryPattern('team-a/*', 'team-a')).toBe(false);
    expect(matchesRepositoryPattern('team-a/*', 'team-ab/app')).toBe(false);
    expect(matchesRepositoryPattern('*', 'anything/at/all')).toBe(true);
  });

  it('refuse a * anywhere but at the end, and names outside the grammar', () => {
    expect(() => assertRepositoryPattern('team-a/*')).not.toThrow();
    expect(() => assertRepositoryPattern('*')).not.toThrow();
    expect(() => assertRepositoryPattern('team-*/app')).toThrow(/not a repository pattern/);
    expect(() => assertRepositoryPattern('Team/app')).toThrow(/not a repository pattern/);
    expect(() => assertRepositoryPattern('team/**')).toThrow(/not a repository pattern/);
  });
});

describe('permissions and grants (Docker token spec, "Token Scope Documentation")', () => {
  const reader = Permissions.of([{ name: 'team-a-read', repositories: ['team-a/*'], actions: ['content/read', 'metadata/read'] }]);

  it('map scope-map actions to pull, push and delete', () => {
    const writer = Permissions.of([{ name: 'w', repositories: ['x/app'], actions: ['content/write', 'content/delete', 'metadata/write'] }]);
    expect([...reader.repositoryActions('team-a/app')]).toEqual(['pull']);
    expect([...reader.repositoryActions('team-b/app')]).toEqual([]);
    expect([...writer.repositoryActions('x/app')].sort()).toEqual(['delete', 'push']);
    expect([...Permissions.all().repositoryActions('any/thing')].sort()).toEqual(['delete', 'pull', 'push']);
  });

  it('grant only the requested actions the identity holds, dropping what is left empty', () => {
    const requested = ['repository:team-a/app:pull,push', 'repository:team-b/app:pull', 'registry:catalog:*'].map((s) => parseScope(s)!);
    const grant = grantRequested(reader, requested);
    expect(grant.access).toEqual([
      { type: 'repository', name: 'team-a/app', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    expect(grantAllows(grant, 'team-a/app', 'pull')).toBe(true);
    expect(grantAllows(grant, 'team-a/app', 'push')).toBe(false);
    expect(grantAllows(grant, 'team-b/app', 'pull')).toBe(false);
    const listed = catalogFilter(grant);
    expect(['team-a/app', 'team-b/app', 'team-a/x/y'].filter(listed)).toEqual(['team-a/app', 'team-a/x/y']);
  });

  it('read * as every action, and give the catalog only to identities with metadata/read', () => {
    const grant = grantRequested(Permissions.all(), [parseScope('repository:r/app:*')!]);
    expect(grant.access[0]!.actions.sort()).toEqual(['delete', 'pull', 'push']);
    const pullOnly = Permissions.of([{ name: 'p', repositories: ['*'], actions: ['content/read'] }]);
    expect(grantRequested(pullOnly, [parseScope('registry:catalog:*')!]).access).toEqual([]);
  });

  it('parse scopes with a resource class and a name holding a colon; refuse malformed ones', () => {
    expect(parseScope('repository(plugin):team/app:pull')).toEqual({ type: 'repository', name: 'team/app', actions: ['pull'] });
    expect(parseScope('repository:localhost:5000/app:pull,push')).toEqual({ type: 'repository', name: 'localhost:5000/app', actions: ['pull', 'push'] });
    expect(parseScope('repository:team/app')).toBeUndefined();
    expect(parseScope('nonsense')).toBeUndefined();
    expect(parseScope('repository::pull')).toBeUndefined();
  });

  it('name the scope a refused request needs, for the challenge', () => {
    expect(requiredScope('pull', 'team/app')).toBe('repository:team/app:pull');
    expect(requiredScope('catalog', undefined)).toBe('registry:catalog:*');
    expect(requiredScope('none', undefined)).toBeUndefined();
  });
});
