import type { z } from 'zod';
import { InvalidRequestError } from '../errors.js';

/**
 * Parses a request part with its schema, or throws InvalidRequestError with one line naming each
 * field at fault: `invalid request body: lat: Too big: expected number to be <=90`.
 */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, part: 'body' | 'query' | 'path'): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message));
  throw new InvalidRequestError(`invalid request ${part}: ${problems.join('; ')}`, { issues: parsed.error.issues.map(({ path, message }) => ({ path, message })) });
}
