import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';

/**
 * A secret kept in a file of the data directory (mode 0600), made by `make` when the file is
 * absent. It is written whole to a temporary file and then hard-linked into place, which fails if
 * the name exists: concurrent starts agree on one value, and nobody ever reads a half-written
 * one. `created` says whether this call made it.
 */
export async function readOrCreateSecretFile(file: string, make: () => string): Promise<{ value: string; created: boolean }> {
  const existing = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  let created = false;
  if (existing === undefined) {
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(temporary, make(), { mode: 0o600 });
    created = await link(temporary, file).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
        return false;
      },
    );
    await unlink(temporary);
  }
  return { value: (await readFile(file, 'utf8')).trim(), created };
}
