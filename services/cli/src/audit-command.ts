import { Command, InvalidArgumentError, Option } from 'commander';
import type { CliIo } from './cli.js';
import type { AuditRecord } from '@meridian/proto';
import { IdentityClient } from './identity-client.js';
import { formatTable } from './format.js';
import { REPO_ROOT, clusterHttpFor, resolveServer } from './server.js';

/** Entries per request; the CLI prints each page as it comes, so a long log is never held whole. */
const PAGE = 500;
const DEFAULT_SINCE = '24h';
const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `meridian audit [--since 2h|DATE] [--json]`: who signed in, pushed, deleted or changed an
 * identity, when, from where. Against a lone region's gateway (--server), or the control plane,
 * which holds every region's log (--server, MERIDIAN_SERVER or the cluster file, as the cluster
 * commands find it). The administrator's password is sent when given (--password or
 * MERIDIAN_ADMIN_PASSWORD): a gateway with MERIDIAN_AUTH=on asks for it.
 */
export function addAuditCommand(program: Command, io: CliIo): void {
  program
    .command('audit')
    .description('the audit log: sign-ins, pushes, deletes and identity changes, oldest first')
    .addOption(
      new Option('--since <when>', `a time back from now (30m, 2h, 7d) or a date (2026-12-01, ISO 8601); default ${DEFAULT_SINCE}`).argParser((value) => parseSince(value, io.now())),
    )
    .addOption(new Option('--password <password>', 'the administrator\'s password (default: MERIDIAN_ADMIN_PASSWORD)'))
    .action(async (options: { since?: Date; password?: string }, command: Command) => {
      const since = options.since ?? parseSince(DEFAULT_SINCE, io.now());
      const globals = command.optsWithGlobals<{ server?: string; ca?: string; json?: boolean; user?: string }>();
      const server = await resolveServer({ option: globals.server, env: io.env.MERIDIAN_SERVER || undefined, folders: [io.cwd, REPO_ROOT] });
      const password = options.password ?? (io.env.MERIDIAN_ADMIN_PASSWORD || undefined);
      const http = await clusterHttpFor(server, { option: globals.ca, env: io.env.MERIDIAN_TLS_CA || undefined, folders: [io.cwd, REPO_ROOT] });
      const client = new IdentityClient(server.replace(/\/+$/, ''), http.fetch, globals.user ?? 'admin', password);
      const json = globals.json === true;
      let after: string | undefined;
      let printed = 0;
      if (json) io.stdout('[');
      do {
        const page = await client.auditPage({ since, limit: PAGE, ...(after ? { after } : {}) });
        if (json) io.stdout(page.entries.map((entry) => `${printed++ === 0 ? '\n' : ',\n'}${JSON.stringify(entry)}`).join(''));
        else if (page.entries.length > 0) {
          io.stdout(formatAuditTable(page.entries, printed === 0));
          printed += page.entries.length;
        }
        after = page.next;
      } while (after);
      if (json) io.stdout(printed === 0 ? ']\n' : '\n]\n');
      else if (printed === 0) io.stdout(`nothing recorded since ${since.toISOString()}\n`);
    });
}

/** `30m`, `2h`, `7d` back from now, or a date or ISO 8601 time. */
export function parseSince(value: string, now: Date): Date {
  const duration = /^(\d+)([smhd])$/.exec(value.trim());
  if (duration) return new Date(now.getTime() - Number(duration[1]) * DURATION_UNITS[duration[2]!]!);
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('a time back from now (30m, 2h, 7d) or a date (2026-12-01)');
  return date;
}

function formatAuditTable(entries: AuditRecord[], withHeader: boolean): string {
  const table = formatTable(
    ['time', 'region', 'identity', 'address', 'action', 'target', 'outcome', 'detail'],
    entries.map((entry) => [
      entry.at,
      entry.region,
      entry.identity ?? '(anonymous)',
      entry.forwardedFor ? `${entry.address ?? '-'} (for ${entry.forwardedFor})` : (entry.address ?? '-'),
      entry.action,
      entry.target ?? '-',
      entry.outcome,
      entry.detail ? Object.entries(entry.detail).map(([key, value]) => `${key}=${value}`).join(' ') : '',
    ]),
  );
  return withHeader ? table : table.slice(table.indexOf('\n') + 1);
}
