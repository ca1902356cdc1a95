import { createTemplateDatabase, dropTestDatabases } from './database.js';

/** vitest globalSetup: one migrated template for the whole run; leftovers of earlier runs go. */
export async function setup(): Promise<void> {
  await dropTestDatabases();
  await createTemplateDatabase();
}

export async function teardown(): Promise<void> {
  await dropTestDatabases();
}
