import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { ensureDatabase, migrate } from '@meridian/metadata';
import type { GatewayConfig } from './config.js';

/**
 * What every gateway of the region needs before it serves: the database and its schema, the
 * data directory, the shared upload secret. Idempotent and safe to run concurrently (migrations
 * take an advisory lock; the secret is created with an atomic link), so a supervisor runs it
 * once before forking and each gateway again on start. Returns the upload secret.
 */
export async function prepareRegion(config: GatewayConfig, logger: Logger): Promise<string> {
  await ensureDatabase(config.databaseUrl);
  await migrate(config.databaseUrl, (message) => logger.debug(message));
  await mkdir(config.dataDir, { recursive: true });
  return config.uploadSecret ?? (await regionUploadSecret(config.dataDir));
}

/**
 * The upload-state secret shared by every gateway of a region that shares the data directory:
 * created once, never random per process (a random one breaks uploads behind a load balancer).
 * It is written whole to a temporary file and then hard-linked into place, which fails if the
 * name exists: concurrent starts agree on one secret, and nobody ever reads a half-written one.
 */
async function regionUploadSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'upload-secret');
  const existing = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing === undefined) {
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(temporary, randomBytes(32).toString('base64url'), { mode: 0o600 });
    await link(temporary, file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await unlink(temporary);
  }
  const secret = (await readFile(file, 'utf8')).trim();
  if (secret.length < 32) {
    // An empty or short key would make upload URLs forgeable: refuse to start instead.
    throw new Error(`${file} holds no usable upload secret (fewer than 32 characters); remove it or set MERIDIAN_UPLOAD_SECRET`);
  }
  return secret;
}
