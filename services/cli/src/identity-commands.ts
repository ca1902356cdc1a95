import { Command, InvalidArgumentError, Option } from 'commander';
import type { CliIo } from './cli.js';
import { IdentityClient } from './identity-client.js';
import { UsageError } from './errors.js';
import { REPO_ROOT, clusterHttpFor } from './server.js';
import { formatTable } from './format.js';

interface IdentityOptions {
  server?: string;
  ca?: string;
  json?: boolean;
  user?: string;
  password?: string;
}

const ACTIONS = ['content/read', 'content/write', 'content/delete', 'metadata/read', 'metadata/write'];

/**
 * `meridian user|scope-map|token ...`: identities of a lone region, through its gateway's admin
 * API, or of a cluster, through its control plane's (MERIDIAN_AUTH=on): the same API at either,
 * named by --server (no default, so a command never lands on the wrong one by accident); the administrator's password is --password, else MERIDIAN_ADMIN_PASSWORD. A password the
 * gateway makes is printed once, by the command that made it.
 */
export function addIdentityCommands(program: Command, io: CliIo): void {
  program.addOption(new Option('--user <name>', 'user|scope-map|token: the administrator to act as').default('admin'));

  // `token rotate` has a --password of its own (which of the token's two), so the administrator's
  // password is read from the option of that name only where it means that.
  const connect = async (command: Command) => {
    const options = command.optsWithGlobals<IdentityOptions & { adminPassword?: string }>();
    if (!options.server) throw new UsageError('user, scope-map and token commands talk to a lone gateway or a cluster\'s control plane: pass --server http://HOST:PORT');
    const password = (command.name() === 'rotate' ? options.adminPassword : options.password) ?? (io.env.MERIDIAN_ADMIN_PASSWORD || undefined);
    if (!password) throw new UsageError(`the administrator's password is needed: pass ${command.name() === 'rotate' ? '--admin-password' : '--password'} or set MERIDIAN_ADMIN_PASSWORD`);
    const server = options.server.replace(/\/+$/, '');
    const http = await clusterHttpFor(server, { option: options.ca, env: io.env.MERIDIAN_TLS_CA || undefined, folders: [io.cwd, REPO_ROOT] });
    return { client: new IdentityClient(server, http.fetch, options.user ?? 'admin', password), json: options.json === true };
  };
  const print = (json: boolean, value: unknown, text: () => string) => io.stdout(json ? `${JSON.stringify(value, null, 2)}\n` : text());
  const done = (json: boolean, value: unknown, text: string) => print(json, value, () => `${text}\n`);

  const user = program.command('user').description('users of a region: administrators, who may do everything');
  user
    .command('create')
    .addOption(adminPasswordOption())
    .argument('<name>', 'the user\'s name')
    .description('create a user; its password is made and printed once')
    .action(async (name: string, _options: object, command: Command) => {
      const { client, json } = await connect(command);
      const created = await client.createUser(name);
      print(json, created, () => `user ${created.name} created; its password, shown only this once:\n${created.password}\n`);
    });
  user
    .command('list')
    .addOption(adminPasswordOption())
    .description('list the users')
    .action(async (_options: object, command: Command) => {
      const { client, json } = await connect(command);
      const answer = await client.listUsers();
      print(json, answer, () => `${answer.users.join('\n')}\n`);
    });

  const scopeMap = program.command('scope-map').description('scope maps: repository patterns and the actions allowed on them');
  scopeMap
    .command('create')
    .addOption(adminPasswordOption())
    .argument('<name>', 'the scope map\'s name')
    .description('create a scope map')
    .requiredOption('--repository <pattern>', 'a repository name, NAME/* (every repository below it) or *; repeat for more', collect, [])
    .requiredOption('--action <action>', `${ACTIONS.join(', ')}; repeat for more`, collectAction, [])
    .action(async (name: string, options: { repository: string[]; action: string[] }, command: Command) => {
      const { client, json } = await connect(command);
      const created = await client.createScopeMap({ name, repositories: options.repository, actions: options.action });
      done(json, created, `scope map ${created.name} created: ${created.actions.join(', ')} on ${created.repositories.join(', ')}`);
    });
  scopeMap
    .command('list')
    .addOption(adminPasswordOption())
    .description('list the scope maps')
    .action(async (_options: object, command: Command) => {
      const { client, json } = await connect(command);
      const answer = await client.listScopeMaps();
      print(json, answer, () => formatTable(['name', 'repositories', 'actions'], answer.scopeMaps.map((m) => [m.name, m.repositories.join(' '), m.actions.join(' ')])));
    });

  const token = program.command('token').description('tokens: names and passwords for clients, bound to a scope map');
  token
    .command('create')
    .addOption(adminPasswordOption())
    .argument('<name>', 'the token\'s name (the user name a client signs in with)')
    .description('create a token; its first password is made and printed once')
    .requiredOption('--scope-map <name>', 'what the token may do')
    .option('--expires <date>', 'when it stops working (2027-01-31, or an ISO 8601 time)', futureDate(io))
    .action(async (name: string, options: { scopeMap: string; expires?: Date }, command: Command) => {
      const { client, json } = await connect(command);
      const created = await client.createToken({ name, scopeMap: options.scopeMap, ...(options.expires ? { expiresAt: options.expires.toISOString() } : {}) });
      const expiry = created.expiresAt ? `, expires ${created.expiresAt}` : '';
      print(json, created, () => `token ${created.name} created (scope map ${created.scopeMap}${expiry}); its password, shown only this once:\n${created.password}\n`);
    });
  for (const [verb, enabled] of [['disable', false], ['enable', true]] as const) {
    token
      .command(verb)
      .addOption(adminPasswordOption())
      .argument('<name>', 'the token\'s name')
      .description(enabled ? 'let a disabled token sign in again' : 'stop a token from signing in (access tokens already issued run out within minutes)')
      .action(async (name: string, _options: object, command: Command) => {
        const { client, json } = await connect(command);
        await client.setTokenEnabled(name, enabled);
        done(json, { name, disabled: !enabled }, `token ${name} ${verb}d`);
      });
  }
  token
    .command('rotate')
    .argument('<name>', 'the token\'s name')
    .description('replace one of the token\'s two passwords with a new one, printed once; the other keeps working')
    .addOption(new Option('--password <slot>', 'which password: 1 or 2').choices(['1', '2']).makeOptionMandatory())
    .addOption(new Option('--admin-password <password>', 'the administrator\'s password (default: MERIDIAN_ADMIN_PASSWORD)'))
    .action(async (name: string, options: { password: '1' | '2' }, command: Command) => {
      const { client, json } = await connect(command);
      const rotated = await client.rotateTokenPassword(name, options.password === '1' ? 1 : 2);
      print(json, rotated, () => `password ${rotated.slot} of token ${rotated.name} replaced; the new one, shown only this once:\n${rotated.password}\n`);
    });
  for (const kind of DELETE_COMMANDS) {
    const group = kind.group === 'user' ? user : kind.group === 'scope-map' ? scopeMap : token;
    group
      .command('delete')
      .addOption(adminPasswordOption())
      .argument('<name>', `the ${kind.noun}'s name`)
      .description(kind.description)
      .action(async (name: string, _options: object, command: Command) => {
        const { client, json } = await connect(command);
        await kind.remove(client, name);
        done(json, { name, deleted: true }, `${kind.noun} ${name} deleted`);
      });
  }
  token
    .command('list')
    .addOption(adminPasswordOption())
    .description('list the tokens (never their passwords)')
    .action(async (_options: object, command: Command) => {
      const { client, json } = await connect(command);
      const answer = await client.listTokens();
      print(json, answer, () => formatTable(['name', 'scope map', 'expires', 'state'], answer.tokens.map((t) => [t.name, t.scopeMap, t.expiresAt ?? '-', t.disabled ? 'disabled' : 'enabled'])));
    });
}

/** The administrator's password, on every identity and control plane command but `token rotate`. */
export function adminPasswordOption(): Option {
  return new Option('--password <password>', 'the administrator\'s password (default: MERIDIAN_ADMIN_PASSWORD)');
}

/** The `delete NAME` command of each kind of identity. */
const DELETE_COMMANDS = [
  { group: 'user', noun: 'user', description: 'delete a user', remove: (client: IdentityClient, name: string) => client.deleteUser(name) },
  { group: 'scope-map', noun: 'scope map', description: 'delete a scope map no token uses', remove: (client: IdentityClient, name: string) => client.deleteScopeMap(name) },
  { group: 'token', noun: 'token', description: 'delete a token', remove: (client: IdentityClient, name: string) => client.deleteToken(name) },
] as const;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function collectAction(value: string, previous: string[]): string[] {
  if (!ACTIONS.includes(value)) throw new InvalidArgumentError(`one of ${ACTIONS.join(', ')}`);
  return [...previous, value];
}

function futureDate(io: CliIo) {
  return (value: string): Date => {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('a date (2027-01-31) or an ISO 8601 time');
    if (date.getTime() <= io.now().getTime()) throw new InvalidArgumentError('a time in the future');
    return date;
  };
}
