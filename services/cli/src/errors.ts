/** Exit codes: 0 done, 1 the control plane refused or could not be reached, 2 a usage mistake. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** The command line itself is wrong (or names no control plane): exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The control plane said no, or could not be asked: exit 1. The message is one line. */
export class CommandError extends Error {
  override name = 'CommandError';
}
