import os from 'node:os';

/**
 * An operator's mistake found while starting: a wrong setting, or a machine that does not match
 * it. Its message is one line that names the setting (the environment variable), what was tried
 * and what to do, and never holds a password. `cause` keeps the original error, whose stack is
 * printed only at LOG_LEVEL=debug: an operator needs the line, a developer the stack. Any other
 * error reaching the top of a start is a bug and keeps its stack.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** A URL's password, and any `?password=`, replaced by `*****`; undefined for what is no URL. */
export function maskPassword(databaseUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  if (url.password) url.password = '*****';
  if (url.searchParams.has('password')) url.searchParams.set('password', '*****');
  return url.toString();
}

/** The passwords a database URL holds, as written and decoded, for scrubbing them from output. */
export function passwordsIn(databaseUrl: string): string[] {
  try {
    const url = new URL(databaseUrl);
    const raw = [url.password, url.searchParams.get('password') ?? ''];
    return [...raw, ...raw.map((value) => safeDecode(value))].filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * What a start failure prints: the one line of a StartupError (with its cause's stack when
 * `stacks`), or the whole stack of anything else. Every secret in `secrets` is scrubbed, so
 * not even an unexpected error's text can leak a password.
 */
export function describeStartFailure(err: unknown, options: { stacks: boolean; secrets: readonly string[] }): string {
  let text: string;
  if (err instanceof StartupError) {
    text = options.stacks && err.cause instanceof Error ? `${err.message}\n  caused by ${err.cause.stack ?? err.cause.message}` : err.message;
  } else {
    text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  // Very short values would scrub ordinary words; no password that short is worth keeping secret.
  for (const secret of options.secrets) if (secret.length >= 4) text = text.split(secret).join('*****');
  return text;
}

// --- the database ------------------------------------------------------------------------------

/** Where a database URL points, for messages: never the password. */
function describeTarget(databaseUrl: string): { hostPort: string; user: string | undefined; database: string } {
  const url = new URL(databaseUrl);
  const host = url.searchParams.get('host') ?? url.hostname;
  return {
    hostPort: `${host}:${url.port || '5432'}`,
    user: safeDecode(url.username) || undefined,
    database: safeDecode(url.pathname.replace(/^\//, '')),
  };
}

const EXAMPLE_URL = 'postgres://USER:PASSWORD@HOST:PORT/DATABASE';

/**
 * Translates what connecting to and preparing the region's database can throw because of the
 * operator's setting or server, into one line naming DATABASE_URL; undefined for anything else
 * (a failing migration is a bug). `stage` says what was being done: creating the database (on
 * the server's `postgres` database) or its schema.
 */
export function databaseStartupError(err: unknown, databaseUrl: string, stage: 'create' | 'migrate'): StartupError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  let target: ReturnType<typeof describeTarget>;
  try {
    target = describeTarget(databaseUrl);
  } catch {
    return undefined;
  }
  const { hostPort, database } = target;
  // With no user in the URL, pg tries PGUSER or the system user; SQL advice then says USER.
  const who = target.user ? `user "${target.user}"` : 'no user given';
  const theUser = target.user ? `user "${target.user}"` : 'the default user';
  const user = target.user ?? 'USER';
  const at = `PostgreSQL at ${hostPort} (${who}, database "${database}")`;
  const fail = (problem: string, advice: string) => new StartupError(`DATABASE_URL: ${problem}; ${advice}`, { cause: err });

  switch (code) {
    case 'ECONNREFUSED':
      return fail(`nothing accepts connections at ${hostPort} (ECONNREFUSED)`, 'start PostgreSQL there, or set DATABASE_URL to where it listens');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return fail(`the host in ${hostPort} does not resolve (${code})`, 'correct the host in DATABASE_URL');
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return fail(`${hostPort} cannot be reached (${code})`, 'check the host and port in DATABASE_URL, and any firewall between');
    case 'ECONNRESET':
      return fail(`${hostPort} closed the connection (ECONNRESET)`, 'check that DATABASE_URL names PostgreSQL\'s host and port');
    case '28P01':
      // PostgreSQL answers an unknown user the same way, so as not to tell who exists.
      return fail(`${at} refused the password (28P01: ${message})`, `set that user's password in DATABASE_URL (${EXAMPLE_URL}), and check that the user exists`);
    case '28000':
      return fail(`${at} refused the login (28000: ${message})`, loginAdvice(message, user));
    case '3D000':
      return fail(`${at} could not open a database (3D000: ${message})`, stage === 'create' ? 'Meridian creates its database from the server\'s "postgres" database: create that, or create the database itself' : 'create the database, or set an existing one in DATABASE_URL');
    case '42501':
      return stage === 'create'
        ? fail(`database "${database}" at ${hostPort} does not exist, and ${theUser} may not create it (42501: ${message})`, `create it (CREATE DATABASE "${database}" OWNER "${user}"), or grant the user CREATEDB`)
        : fail(`${theUser} may not create Meridian's tables in database "${database}" at ${hostPort} (42501: ${message})`, `make the user the database's owner (ALTER DATABASE "${database}" OWNER TO "${user}")`);
    case '53300':
      return fail(`${at} has no connection slot left (53300: ${message})`, 'lower DATABASE_POOL_SIZE or MERIDIAN_WORKERS, or raise the server\'s max_connections');
    case '57P03':
      return fail(`${at} is not accepting connections yet (57P03: ${message})`, 'wait until the server is up, then start again');
  }
  // pg reports these as plain errors, without a code.
  if (/password must be a string|no password was provided/i.test(message)) {
    return fail(`${at} asks for a password, and DATABASE_URL holds none`, `add it (${EXAMPLE_URL})`);
  }
  if (/timeout expired|connection timeout/i.test(message)) {
    return fail(`no PostgreSQL answered at ${hostPort} in time (${message})`, 'check the host and port in DATABASE_URL: is that PostgreSQL\'s port?');
  }
  if (/Connection terminated unexpectedly/i.test(message)) {
    return fail(`${hostPort} closed the connection before PostgreSQL answered`, 'check the host and port in DATABASE_URL: is that PostgreSQL\'s port?');
  }
  if (/SSL/.test(message)) {
    return fail(`${at}: ${message}`, 'match sslmode in DATABASE_URL to what the server offers');
  }
  return undefined;
}

function loginAdvice(serverMessage: string, user: string): string {
  if (/does not exist/.test(serverMessage)) return `create that role (CREATE ROLE "${user}" LOGIN CREATEDB), or set an existing user in DATABASE_URL`;
  if (/not permitted to log in/.test(serverMessage)) return `allow it to log in (ALTER ROLE "${user}" LOGIN), or set another user in DATABASE_URL`;
  if (/no PostgreSQL user name/.test(serverMessage)) return `put a user in DATABASE_URL (${EXAMPLE_URL})`;
  if (/pg_hba\.conf/.test(serverMessage)) return 'allow this host and user in the server\'s pg_hba.conf, or set another user in DATABASE_URL';
  return 'check the user in DATABASE_URL';
}

// --- the listening address ---------------------------------------------------------------------

/** Translates why the gateway cannot listen on HOST:PORT into one line; undefined if unforeseen. */
export function listenStartupError(err: unknown, host: string, port: number): StartupError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const fail = (problem: string) => new StartupError(problem, { cause: err });
  switch (code) {
    case 'EADDRINUSE':
      return fail(`PORT: ${address} is already in use (EADDRINUSE); stop what listens there, or set PORT to a free port (PORT=0 picks one)`);
    case 'EADDRNOTAVAIL':
      return fail(`HOST: ${host} is not an address of this machine (EADDRNOTAVAIL); set HOST to one of ${localAddresses()}, or 0.0.0.0 for all`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return fail(`HOST: "${host}" does not resolve to an address (${code}); set HOST to one of ${localAddresses()}, or 0.0.0.0 for all`);
    case 'EAFNOSUPPORT':
      return fail(`HOST: ${host} is of an address family this machine does not support (EAFNOSUPPORT); set HOST to one of ${localAddresses()}`);
    case 'EACCES':
    case 'EPERM':
      return fail(`PORT: this user may not listen on ${address} (${code}); use a port from 1024 up, or grant the process CAP_NET_BIND_SERVICE`);
  }
  return undefined;
}

function localAddresses(): string {
  // Link-local IPv6 addresses need a scope (`%eth0`) to bind: not worth offering.
  const addresses = Object.values(os.networkInterfaces())
    .flatMap((entries) => (entries ?? []).map((entry) => entry.address))
    .filter((address) => !/^fe80:/i.test(address));
  return addresses.length > 0 ? addresses.join(', ') : '127.0.0.1';
}

// --- the data directory ------------------------------------------------------------------------

const DATA_DIR_ADVICE: Record<string, string> = {
  EROFS: 'its file system is mounted read-only: mount it read-write, or set MERIDIAN_DATA_DIR to a writable directory',
  EACCES: 'give this process\'s user write access, or set MERIDIAN_DATA_DIR to a directory it can write',
  EPERM: 'give this process\'s user write access, or set MERIDIAN_DATA_DIR to a directory it can write',
  ENOTDIR: 'part of that path is a file, not a directory: set MERIDIAN_DATA_DIR to a directory',
  EEXIST: 'part of that path is a file, not a directory: set MERIDIAN_DATA_DIR to a directory',
  ENOSPC: 'its file system is full: free space, or set MERIDIAN_DATA_DIR to a directory on another one',
  EDQUOT: 'this user\'s disk quota is used up: free space, or set MERIDIAN_DATA_DIR to a directory on another file system',
  ELOOP: 'the path loops through symbolic links: set MERIDIAN_DATA_DIR to a real directory',
  ENAMETOOLONG: 'the path is too long: set MERIDIAN_DATA_DIR to a shorter one',
};

/** Translates why the data directory cannot be written into one line; undefined if unforeseen. */
export function dataDirStartupError(err: unknown, dataDir: string): StartupError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(code in DATA_DIR_ADVICE)) return undefined;
  return new StartupError(`MERIDIAN_DATA_DIR: ${dataDir} is not writable (${(err as Error).message}); ${DATA_DIR_ADVICE[code]}`, { cause: err });
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
