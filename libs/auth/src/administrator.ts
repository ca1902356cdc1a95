import path from 'node:path';
import type { IdentityService } from './identity-service.js';
import { generatePassword } from './passwords.js';
import { readOrCreateSecretFile } from './secret-file.js';

/** The administrator a lone region, or a cluster's control plane, has once auth is on. */
export const ADMINISTRATOR = 'admin';

/**
 * Makes sure the administrator exists: its password from `adminPassword` (MERIDIAN_ADMIN_PASSWORD,
 * reapplied at every start), or, when unset and there is no administrator yet, made once and
 * written to `<dataDir>/admin-password` (mode 0600). `log` hears what happened, with the file's
 * path, never the password. Safe for several processes to run together.
 */
export async function prepareAdministrator(
  identities: IdentityService,
  options: { adminPassword?: string; dataDir: string },
  log: { info(fields: object, message: string): void; warn(fields: object, message: string): void },
): Promise<void> {
  if (options.adminPassword !== undefined) {
    if (await identities.ensureAdministrator(ADMINISTRATOR, options.adminPassword)) log.info({ user: ADMINISTRATOR }, 'administrator password set from MERIDIAN_ADMIN_PASSWORD');
  } else if (!(await identities.hasUser(ADMINISTRATOR))) {
    const file = path.join(options.dataDir, 'admin-password');
    const { value, created } = await readOrCreateSecretFile(file, generatePassword);
    await identities.ensureAdministrator(ADMINISTRATOR, value);
    if (created) log.warn({ user: ADMINISTRATOR, file }, `administrator password written to ${file}; set MERIDIAN_ADMIN_PASSWORD to choose it`);
  }
}
