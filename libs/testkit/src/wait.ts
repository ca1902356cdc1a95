/** How long `until` waits by default: far longer than a loaded machine needs, and inside vitest's test timeout. */
export const UNTIL_DEADLINE_MS = 30_000;

export interface UntilOptions {
  /** What is awaited, for the failure; the condition's source when absent. */
  what?: string;
  deadlineMs?: number;
  intervalMs?: number;
}

/**
 * Polls `condition` until it holds, and fails naming what it waited for once the deadline has
 * passed: a test that waits for a state never waits without end (CONTRIBUTING.md, 'Tests').
 * Errors the condition throws are not caught.
 */
export async function until(condition: () => boolean | Promise<boolean>, options: UntilOptions = {}): Promise<void> {
  const deadlineMs = options.deadlineMs ?? UNTIL_DEADLINE_MS;
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${deadlineMs / 1000} s: ${options.what ?? condition.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 5));
  }
}
