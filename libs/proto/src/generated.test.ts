import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('generated protocol types', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'meridian-proto-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('are what the generator makes of the .proto files today (run `pnpm --filter @meridian/proto generate`)', () => {
    const script = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).scripts.generate as string;
    const args = script.split(/\s+/).slice(1).map((arg) => (arg.startsWith('--outDir=') ? `--outDir=${out}` : arg));
    execFileSync(path.join(packageRoot, 'node_modules/.bin/proto-loader-gen-types'), args, { cwd: packageRoot, stdio: 'pipe' });
    const committed = path.join(packageRoot, 'src/generated');
    expect(filesUnder(out)).toEqual(filesUnder(committed));
    for (const file of filesUnder(out)) {
      expect(readFileSync(path.join(committed, file), 'utf8'), file).toBe(readFileSync(path.join(out, file), 'utf8'));
    }
  });
});
