/**
 * Starts the registry an e2e suite runs against. `meridian` (the default) is a real gateway
 * process on a fresh database; `distribution` is the CNCF reference registry, used to prove a
 * scenario is right independently of Meridian. Suites pick targets with E2E_TARGET, a
 * comma-separated list (`E2E_TARGET=distribution`, `E2E_TARGET=meridian,distribution`).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createTestDatabase } from '../../libs/testkit/src/database.js';
import { startGatewayProcess } from '../../libs/testkit/src/gateway-process.js';
import { startDistributionRegistry } from './distribution.js';

export const REGISTRY_TARGETS = ['meridian', 'distribution'] as const;
export type RegistryTarget = (typeof REGISTRY_TARGETS)[number];

export interface RegistryUnderTest {
  target: RegistryTarget;
  /** `HOST:PORT`, as used in `docker://HOST:PORT/REPO:TAG`. */
  host: string;
  url: string;
  /** Stops the registry and removes what it created outside `workDir` (its database). */
  stop(): Promise<void>;
}

/** Parses E2E_TARGET; unset or empty means Meridian alone, which is what `pnpm test` runs. */
export function parseRegistryTargets(value: string | undefined): RegistryTarget[] {
  if (!value?.trim()) return ['meridian'];
  return value.split(',').map((raw) => {
    const target = raw.trim();
    if (!(REGISTRY_TARGETS as readonly string[]).includes(target)) {
      throw new Error(`E2E_TARGET: unknown target "${target}" (expected one of ${REGISTRY_TARGETS.join(', ')})`);
    }
    return target as RegistryTarget;
  });
}

/** `workDir` belongs to the registry: its storage (and config) go under it; the caller removes it. */
export async function startRegistryUnderTest(target: RegistryTarget, workDir: string): Promise<RegistryUnderTest> {
  await mkdir(workDir, { recursive: true });
  if (target === 'distribution') {
    const registry = await startDistributionRegistry({ workDir });
    return { target, host: registry.host, url: registry.url, stop: registry.stop };
  }

  // A migrated clone of the run's template (vitest globalSetup builds it).
  const database = await createTestDatabase();
  const dataDir = path.join(workDir, 'data');
  await mkdir(dataDir, { recursive: true });
  try {
    const gateway = await startGatewayProcess({ databaseUrl: database.url, dataDir });
    return {
      target,
      host: new URL(gateway.url).host,
      url: gateway.url,
      async stop() {
        try {
          await gateway.stop();
        } finally {
          await database.drop();
        }
      },
    };
  } catch (err) {
    await database.drop();
    throw err;
  }
}
