import { defineConfig } from 'vitest/config';

// One runner for the whole workspace (CONTRIBUTING.md, 'Tests'): unit tests `*.test.ts` and
// Postgres/Redis-backed `*.int.test.ts` beside the code, multi-process real-client scenarios
// `*.e2e.test.ts` in e2e/.
export default defineConfig({
  test: {
    include: ['libs/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'e2e/**/*.test.ts'],
    pool: 'forks',
    // Two cores: more workers only contend with the gateways the tests spawn.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['libs/testkit/src/global-setup.ts'],
  },
});
