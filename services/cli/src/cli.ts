import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ReferenceStatus, RegionRecord } from '@meridian/proto';
import { ControlPlaneClient, type PurgeReport } from './client.js';
import { CommandError, EXIT, UsageError } from './errors.js';
import { formatAge, formatBytes, formatDuration, formatTable } from './format.js';
import { REPO_ROOT, clusterAdminPassword, clusterHttpFor, resolveServer } from './server.js';
import { addIdentityCommands, adminPasswordOption } from './identity-commands.js';
import { addAuditCommand } from './audit-command.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  /** The folder the user ran the command in. */
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  now: () => Date;
  /** Asks a question on the terminal and resolves with the answer; undefined when there is no terminal. */
  ask?: (question: string) => Promise<string>;
}

interface GlobalOptions {
  server?: string;
  ca?: string;
  json?: boolean;
  user?: string;
  password?: string;
}

/**
 * Runs one `meridian ...` command line (argv without node and the script) and resolves with its
 * exit code: 0 done, 1 the control plane refused or could not be reached, 2 a usage mistake.
 * Errors are one line on stderr, `meridian: ...`.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its own message (or the help) already.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError) {
      io.stderr(`meridian: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof CommandError) {
      io.stderr(`meridian: ${err.message}\n`);
      return EXIT.failed;
    }
    throw err;
  }
}

function buildProgram(io: CliIo): Command {
  const program = new Command('meridian')
    .description('Operate a Meridian cluster through its control plane, and a region\'s identities through its gateway.')
    .addOption(new Option('--server <url>', 'the control plane (default: MERIDIAN_SERVER, else "controlPlane" in .meridian/cluster.json); for user, scope-map and token, the gateway'))
    .addOption(new Option('--ca <file>', 'a PEM file of the authority that signed the server\'s certificate, trusted besides the system\'s (default: MERIDIAN_TLS_CA, else "caFile" in .meridian/cluster.json)'))
    .option('--json', 'print the control plane\'s JSON answer instead of a table')
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 the control plane refused or could not be reached, 2 a usage mistake.\n' +
        'The control plane is --server URL, else MERIDIAN_SERVER, else "controlPlane" in .meridian/cluster.json\n' +
        '(in the current folder or the checkout\'s root), which `pnpm cluster up` writes.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  // Subcommands made below inherit the output and exit handling; a group given no subcommand
  // prints its help as a usage error.

  const connect = async (command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>();
    const server = await resolveServer({ option: options.server, env: io.env.MERIDIAN_SERVER || undefined, folders: [io.cwd, REPO_ROOT] });
    // With MERIDIAN_AUTH=on (its default) the control plane asks for the administrator; with it off, none is needed.
    const password = options.password ?? (io.env.MERIDIAN_ADMIN_PASSWORD || undefined) ?? (await clusterAdminPassword(server, [io.cwd, REPO_ROOT]));
    const credentials = password === undefined ? undefined : { user: options.user ?? 'admin', password };
    const http = await clusterHttpFor(server, { option: options.ca, env: io.env.MERIDIAN_TLS_CA || undefined, folders: [io.cwd, REPO_ROOT] });
    return { client: new ControlPlaneClient(server, http.fetch, credentials), json: options.json === true };
  };
  const print = (json: boolean, value: unknown, text: () => string) => io.stdout(json ? `${JSON.stringify(value, null, 2)}\n` : text());

  const region = program.command('region').description('register, remove and list regions');
  region
    .command('add')
    .addOption(adminPasswordOption())
    .description('register a region; it receives new changes at once and the existing catalog as a backfill')
    .argument('<name>', 'the region\'s name (its MERIDIAN_REGION)')
    .requiredOption('--http <url>', 'the region\'s registry URL')
    .requiredOption('--grpc <host:port>', 'the region\'s replica gRPC address')
    .requiredOption('--lat <degrees>', 'latitude', coordinate(90))
    .requiredOption('--lon <degrees>', 'longitude', coordinate(180))
    .option('--cache-size <size>', 'an edge region: keep at most this much blob data (50GiB, 512MiB), filled on demand, least recently used evicted', byteSize)
    .action(async (name: string, options: { http: string; grpc: string; lat: number; lon: number; cacheSize?: number }, command: Command) => {
      const { client, json } = await connect(command);
      const { cacheSize, ...place } = options;
      const added = await client.addRegion({ name, ...place, ...(cacheSize !== undefined ? { cacheBytes: cacheSize } : {}) });
      print(json, added, () => {
        const backfill = added.backfill ? `: backfilling ${added.backfill.total} catalog items (meridian region list shows progress)` : '';
        return `region ${added.name} registered, state ${added.state}${backfill}\n`;
      });
    });
  region
    .command('remove')
    .addOption(adminPasswordOption())
    .description('drain a region: no new work targets it and its queued replications are dropped; --purge also deletes its data')
    .argument('<name>', 'the region\'s name')
    .option('--purge', 'then delete everything the region holds (repositories, manifests, tags, blobs) and forget the region')
    .option('--yes', 'with --purge: confirm the deletion without being asked')
    .option('--force', 'with --purge: delete even content no other active region holds, and changes the region never relayed')
    .action(async (name: string, options: { purge?: boolean; yes?: boolean; force?: boolean }, command: Command) => {
      if ((options.force || options.yes) && !options.purge) throw new UsageError(`--${options.force ? 'force' : 'yes'} only goes with --purge`);
      const { client, json } = await connect(command);
      if (!options.purge) {
        const removed = await client.removeRegion(name);
        print(json, removed, () => `region ${removed.name} is ${removed.state}: no new replication targets it; its data stays (--purge deletes it)\n`);
        return;
      }
      if (!options.yes) await confirmPurge(name, io);
      const purged = await client.purgeRegion(name, options.force === true);
      print(json, purged, () => formatPurge(purged));
    });
  region
    .command('routing')
    .addOption(adminPasswordOption())
    .description('turn nearest-region routing to a region on or off (replication to it goes on either way)')
    .argument('<name>', 'the region\'s name')
    .addArgument(new Argument('<switch>', 'on: the router may send clients there; off: it sends none').choices(['on', 'off']))
    .action(async (name: string, onOff: 'on' | 'off', _options: object, command: Command) => {
      const { client, json } = await connect(command);
      const changed = await client.setRouting(name, onOff === 'on');
      print(json, changed, () => `routing to region ${changed.name} is ${changed.routing ? 'on' : 'off'}\n`);
    });
  region
    .command('list')
    .addOption(adminPasswordOption())
    .description('list the regions: state (and "routing off"), endpoints, last heartbeat, backfill progress')
    .action(async (_options: object, command: Command) => {
      const { client, json } = await connect(command);
      const answer = await client.listRegions();
      const now = io.now();
      print(json, answer, () =>
        answer.regions.length === 0
          ? 'no regions registered (meridian region add NAME ...)\n'
          : formatTable(
              ['name', 'state', 'http', 'grpc', 'heartbeat', 'backfill'],
              answer.regions.map((entry) => [entry.name, entry.routing ? entry.state : `${entry.state}, routing off`, entry.http, entry.grpc, formatAge(entry.heartbeatAt, now), formatBackfill(entry.backfill)]),
            ),
      );
    });

  const replication = program.command('replication').description('where content stands in each region');
  replication
    .command('status')
    .addOption(adminPasswordOption())
    .description('per region: whether a tag or manifest is present, pending or failed there')
    .argument('<reference>', 'REPO, REPO:TAG or REPO@DIGEST (REPO alone: every tag)')
    .action(async (reference: string, _options: object, command: Command) => {
      const { repository, tag, digest } = parseReference(reference);
      const { client, json } = await connect(command);
      const answer = await client.status(repository, tag ?? digest);
      const now = io.now();
      print(json, answer, () => {
        if ('tags' in answer) {
          if (answer.tags.length === 0) return `${repository} has no tags in the catalog\n`;
          return formatTable(
            ['tag', 'digest', 'region', 'state', 'since', 'error'],
            answer.tags.flatMap((item) => statusRows(item, now).map((row) => [item.tag ?? '', shortDigest(item.digest), ...row])),
          );
        }
        const title = answer.tag === null ? `${repository}@${answer.digest}` : `${repository}:${answer.tag} (${answer.digest})`;
        return `${title}\n${formatTable(['region', 'state', 'since', 'error'], statusRows(answer, now))}`;
      });
    });

  addIdentityCommands(program, io);
  addAuditCommand(program, io);
  return program;
}

/**
 * Asks on the terminal for the region's name before a purge; without a terminal (a script, a
 * pipe) there is no one to ask, and the purge needs --yes.
 */
async function confirmPurge(name: string, io: CliIo): Promise<void> {
  if (!io.ask) throw new UsageError(`--purge deletes every repository, manifest, tag and blob of region ${name} for good: add --yes to confirm (there is no terminal to ask on)`);
  const answer = await io.ask(`This deletes every repository, manifest, tag and blob region ${name} holds, for good. Type the region's name to go on: `);
  if (answer.trim() !== name) throw new CommandError(`purge of region ${name} not confirmed: nothing changed`);
}

function formatPurge(purged: PurgeReport): string {
  const { deleted } = purged;
  const lines = [
    `region ${purged.region} purged and removed from the cluster; it deleted:`,
    `  ${deleted.repositories} repositories, ${deleted.manifests} manifests, ${deleted.tags} tags, ${deleted.blobLinks} blob links`,
    `  ${deleted.blobs} blobs (${formatBytes(deleted.bytes)})`,
  ];
  if (deleted.discardedChanges > 0) lines.push(`  ${deleted.discardedChanges} changes of its own it had never relayed`);
  lines.push(`${purged.replicationsRemoved} replication records removed; stop the region's processes now`);
  return `${lines.join('\n')}\n`;
}

function coordinate(limit: number) {
  return (value: string): number => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number) || Math.abs(number) > limit) throw new InvalidArgumentError(`a number from -${limit} to ${limit}`);
    return number;
  };
}

const BYTE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** A size such as 50GiB, 512MiB or 1048576 (bytes), as a whole number of bytes above 0. */
function byteSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?$/.exec(value.trim());
  const bytes = match ? Math.floor(Number(match[1]) * BYTE_UNITS[match[2] ?? '']!) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidArgumentError('a size such as 50GiB, 512MiB or a number of bytes');
  return bytes;
}

/** REPO, REPO:TAG or REPO@DIGEST; a ':' before the last '/' belongs to the name (a host:port). */
export function parseReference(reference: string): { repository: string; tag?: string; digest?: string } {
  const at = reference.indexOf('@');
  if (at >= 0) {
    const repository = reference.slice(0, at);
    const digest = reference.slice(at + 1);
    if (!repository || !/^[a-z0-9+._-]+:[A-Za-z0-9=_-]+$/.test(digest)) throw new UsageError(`"${reference}" is not REPO@DIGEST (e.g. team/app@sha256:...)`);
    return { repository, digest };
  }
  const colon = reference.lastIndexOf(':');
  if (colon > reference.lastIndexOf('/')) {
    const repository = reference.slice(0, colon);
    const tag = reference.slice(colon + 1);
    if (!repository || !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) throw new UsageError(`"${reference}" is not REPO:TAG (e.g. team/app:v1)`);
    return { repository, tag };
  }
  if (!reference) throw new UsageError('a repository is needed: REPO, REPO:TAG or REPO@DIGEST');
  return { repository: reference };
}

function formatBackfill(backfill: RegionRecord['backfill']): string {
  if (!backfill) return '-';
  const { done, failed, total, bytes, etaSeconds } = backfill;
  const parts = [`${done}/${total} (${total === 0 ? 100 : Math.floor((done / total) * 100)}%)`, formatBytes(bytes)];
  if (failed > 0) parts.push(`${failed} failed`);
  if (done < total) parts.push(etaSeconds === null ? 'ETA unknown' : `ETA ${formatDuration(etaSeconds)}`);
  return parts.join(', ');
}

function statusRows(item: ReferenceStatus, now: Date): string[][] {
  return item.regions.map((entry) => [entry.name, entry.state, entry.updatedAt === null ? '-' : formatAge(entry.updatedAt, now), entry.error ?? '']);
}

function shortDigest(digest: string): string {
  const [algorithm, hex = ''] = digest.split(':');
  return `${algorithm}:${hex.slice(0, 12)}`;
}
