import type pg from 'pg';
import { withTransaction, type Queryable } from './db.js';
import { RepositoryStore } from './repositories.js';
import { BlobMetadataStore } from './blobs.js';
import { ManifestStore } from './manifests.js';
import { ManifestPushStore } from './manifest-push.js';
import { TagStore } from './tags.js';
import { UploadStore } from './uploads.js';
import { OutboxStore } from './outbox.js';
import { InventoryStore } from './inventory.js';
import { PurgeStore } from './purge.js';
import { IdentityStore } from './identities.js';
import { AuditStore } from './audit.js';
import { ReplicationFenceStore } from './replication-fence.js';
import { announceChanges, type MetadataChange } from './changes.js';

export interface MetadataOptions {
  /**
   * The trace context of the write under way (libs/telemetry currentTraceCarrier), stored with
   * each change appended to the outbox, so that the change's replication to every other region
   * continues the trace of the request that made it. Unset or undefined: nothing is stored.
   */
  traceContext?: () => Record<string, string> | undefined;
  /**
   * In a cluster: every audit entry appended is also queued for the control plane, which keeps
   * the log of every region. A lone region keeps its log only here.
   */
  shipAudit?: boolean;
}

/** The region's metadata stores over one connection (the pool, or a transaction's client). */
export class MetadataStores {
  readonly repositories: RepositoryStore;
  readonly blobs: BlobMetadataStore;
  readonly manifests: ManifestStore;
  readonly manifestPushes: ManifestPushStore;
  readonly tags: TagStore;
  readonly uploads: UploadStore;
  readonly outbox: OutboxStore;
  readonly inventory: InventoryStore;
  readonly purge: PurgeStore;
  readonly identities: IdentityStore;
  readonly audit: AuditStore;
  readonly fence: ReplicationFenceStore;

  constructor(
    protected readonly db: Queryable,
    protected readonly options: MetadataOptions = {},
  ) {
    const traceContext = options.traceContext ?? noTrace;
    this.repositories = new RepositoryStore(db);
    this.blobs = new BlobMetadataStore(db, traceContext);
    this.manifests = new ManifestStore(db);
    this.manifestPushes = new ManifestPushStore(db, traceContext, options.shipAudit === true);
    this.tags = new TagStore(db);
    this.uploads = new UploadStore(db, traceContext);
    this.outbox = new OutboxStore(db, traceContext);
    this.inventory = new InventoryStore(db);
    this.purge = new PurgeStore(db);
    this.identities = new IdentityStore(db);
    this.audit = new AuditStore(db, options.shipAudit === true);
    this.fence = new ReplicationFenceStore(db);
  }
}

/** Stores inside one transaction; changes announced here are delivered only if it commits. */
export class MetadataTransaction extends MetadataStores {
  /** Announces what the transaction changed (one round trip however many). */
  async announce(changes: readonly MetadataChange[]): Promise<void> {
    await announceChanges(this.db, changes);
  }

  /**
   * Serialises, until the transaction ends, every write applying to one name (a tag, a manifest
   * digest) of a repository, so a replicated write's clock checks and the write are one step.
   */
  async lockName(repository: string, name: string): Promise<void> {
    await this.db.query({
      name: 'lock-name',
      text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))',
      // A space appears in no repository name, tag or digest, so distinct pairs stay distinct.
      values: [`${repository} ${name}`],
    });
  }
}

export class Metadata extends MetadataStores {
  constructor(
    private readonly pool: pg.Pool,
    options: MetadataOptions = {},
  ) {
    super(pool, options);
  }

  transaction<T>(work: (tx: MetadataTransaction) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, (client) => work(new MetadataTransaction(client, this.options)));
  }
}

/** Where a trace context is stored as JSON: SQL NULL when there is none. */
export type TraceContextSource = () => Record<string, string> | undefined;
const noTrace: TraceContextSource = () => undefined;
