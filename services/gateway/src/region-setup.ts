import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { readOrCreateSecretFile } from '@meridian/auth';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { ensureDatabase, migrate } from '@meridian/metadata';
import type { GatewayConfig } from './config.js';
import { StartupError, dataDirStartupError, databaseStartupError } from './startup-errors.js';

/**
 * What every gateway of the region needs before it serves: a writable data directory, the
 * database and its schema, the shared upload secret. Idempotent and safe to run concurrently
 * (migrations take an advisory lock; the secret is created with an atomic link), so a supervisor
 * runs it once before forking and each gateway again on start. Returns the upload secret.
 * Throws a StartupError, one line naming the setting, when the operator's settings or machine
 * are at fault; anything else as it came.
 */
export async function prepareRegion(config: GatewayConfig, logger: Logger): Promise<string> {
  const dataDir = <T>(step: () => Promise<T>) => translated(step, (err) => dataDirStartupError(err, config.dataDir));
  await dataDir(() => probeWritable(config.dataDir));
  await translated(() => ensureDatabase(config.databaseUrl), (err) => databaseStartupError(err, config.databaseUrl, 'create'));
  await translated(() => migrate(config.databaseUrl, (message) => logger.debug(message)), (err) => databaseStartupError(err, config.databaseUrl, 'migrate'));
  return config.uploadSecret ?? (await dataDir(() => regionUploadSecret(config.dataDir)));
}

async function translated<T>(step: () => Promise<T>, translate: (err: unknown) => StartupError | undefined): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw translate(err) ?? err;
  }
}

/**
 * A read-only mount or a directory the user may not write would otherwise let the gateway start
 * and then fail every push (with MERIDIAN_UPLOAD_SECRET set, nothing else writes at start). So a
 * file is created and removed where blobs will go, as a push would.
 */
async function probeWritable(dataDir: string): Promise<void> {
  const store = path.join(dataDir, 'store');
  await mkdir(store, { recursive: true });
  // Named by process, so the gateways of a region starting together never share one.
  const probe = path.join(store, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeFile(probe, 'meridian', { flag: 'wx' });
  await unlink(probe);
}

/**
 * The upload-state secret shared by every gateway of a region that shares the data directory:
 * created once, never random per process (a random one breaks uploads behind a load balancer).
 */
async function regionUploadSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'upload-secret');
  const secret = (await readOrCreateSecretFile(file, () => randomBytes(32).toString('base64url'))).value;
  if (secret.length < 32) {
    // An empty or short key would make upload URLs forgeable: refuse to start instead.
    throw new StartupError(`MERIDIAN_DATA_DIR: ${file} holds no usable upload secret (fewer than 32 characters); remove it (a new one is made) or set MERIDIAN_UPLOAD_SECRET`);
  }
  return secret;
}

