import { z } from 'zod';

/**
 * A change as it travels between processes: written by a region into its outbox in the same
 * transaction as the write itself, relayed in order to the control plane, and handed to the
 * replication worker as the payload of one job per target region. JSON, validated at every hop.
 *
 * `seq` is the origin region's outbox sequence number (its order of commits), `hlc` the hybrid
 * logical clock of the write (see replica.proto, "Clocks"). Both are decimal strings, since
 * they exceed what a JSON number holds exactly.
 */
const decimal = z.string().regex(/^\d{1,20}$/, 'a non-negative decimal integer');
const repository = z.string().min(1).max(255);
const digest = z.string().min(1).max(200);

export const ChangeBodySchema = z.discriminatedUnion('kind', [
  /** A verified blob was committed into (or mounted into) a repository. */
  z.object({ kind: z.literal('blob.link'), repository, digest, size: z.number().int().nonnegative() }),
  /** A blob was unlinked from a repository (its bytes stay until garbage collection). */
  z.object({ kind: z.literal('blob.unlink'), repository, digest }),
  /** A manifest was stored; `tag` is set when it was pushed by tag (a tag write or move). */
  z.object({
    kind: z.literal('manifest.put'),
    repository,
    digest,
    mediaType: z.string().min(1),
    size: z.number().int().nonnegative(),
    tag: z.string().min(1).max(128).optional(),
  }),
  /** A manifest and every tag naming it were deleted. */
  z.object({ kind: z.literal('manifest.delete'), repository, digest }),
  /** A tag was deleted; the manifest it named stays. */
  z.object({ kind: z.literal('tag.delete'), repository, tag: z.string().min(1).max(128) }),
]);
export type ChangeBody = z.infer<typeof ChangeBodySchema>;
export type ChangeKind = ChangeBody['kind'];

export const ReplicatedChangeSchema = z.object({
  origin: z.string().min(1).max(63),
  seq: decimal,
  hlc: decimal,
  /** When the origin committed it (ISO 8601), for lag figures. */
  at: z.string().datetime({ offset: true }),
  body: ChangeBodySchema,
  /** W3C trace context of the push, so one trace shows it arriving in every region. */
  trace: z.record(z.string(), z.string()).optional(),
});
export type ReplicatedChange = z.infer<typeof ReplicatedChangeSchema>;

/** What a region's outbox relay POSTs to the control plane: changes of one origin, in seq order. */
export const ChangeBatchSchema = z.object({
  origin: z.string().min(1).max(63),
  changes: z.array(ReplicatedChangeSchema).max(1000),
});
export type ChangeBatch = z.infer<typeof ChangeBatchSchema>;
