import { z } from 'zod';

/**
 * The audit log as it travels: read from a region's or the control plane's admin API
 * (`GET /api/v1/audit`, by the CLI), and shipped by each region of a cluster to the control
 * plane, which keeps every region's log. Names and facts only: never a password or a token.
 */
export const AUDIT_ACTIONS = [
  'sign-in',
  'push',
  'delete',
  'user.create',
  'user.delete',
  'scope-map.create',
  'scope-map.delete',
  'token.create',
  'token.delete',
  'token.disable',
  'token.enable',
  'token.rotate',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

const text = (max: number) => z.string().max(max).nullable();

export const AuditRecordSchema = z.object({
  /** Decimal: the order of appends in the log that holds it (the region's, or the control plane's). */
  id: z.string().regex(/^\d{1,19}$/),
  /** ISO 8601, milliseconds. */
  at: z.iso.datetime(),
  region: z.string().min(1).max(63),
  /** The identity that acted (for a failed sign-in, the name given); null: anonymous. */
  identity: text(255),
  /** The client's address: its TCP peer, or behind a trusted proxy the address the proxy forwarded. */
  address: text(64),
  /** The X-Forwarded-For the request carried, as claimed. */
  forwardedFor: text(256),
  action: z.enum(AUDIT_ACTIONS),
  /** What was acted on: `team-a/app:v1`, `team-a/app@sha256:…`, `token ci`. */
  target: text(600),
  outcome: z.enum(AUDIT_OUTCOMES),
  detail: z.record(z.string(), z.union([z.string().max(1000), z.number(), z.boolean()])).nullable(),
});
export type AuditRecord = z.infer<typeof AuditRecordSchema>;

/** One answer of `GET /api/v1/audit`; `next` continues it (`after=`). */
export interface AuditPage {
  entries: AuditRecord[];
  next?: string;
}

/** What a region's shipper posts to the control plane: its entries, oldest first. */
export const AuditBatchSchema = z.object({
  region: z.string().min(1).max(63),
  entries: z.array(AuditRecordSchema).max(1000),
});
export type AuditBatch = z.infer<typeof AuditBatchSchema>;
