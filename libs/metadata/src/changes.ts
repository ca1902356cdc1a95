import pg from 'pg';
import type { Queryable } from './db.js';

/**
 * What a write changed, announced with NOTIFY inside the writing transaction, so it is delivered
 * exactly when (and only if) the change commits. Every gateway of the region listens and drops
 * what it cached about the named object. The replication outbox of the roadmap is written at the
 * same point, in the same transaction.
 */
export type MetadataChange =
  | { kind: 'tag'; repository: string; tag: string }
  | { kind: 'manifest'; repository: string; digest: string }
  | { kind: 'blob'; repository: string; digest: string };

export const CHANGE_CHANNEL = 'meridian_metadata_changes';

export async function announceChanges(db: Queryable, changes: readonly MetadataChange[]): Promise<void> {
  if (changes.length === 0) return;
  await db.query({
    name: 'announce-changes',
    text: 'SELECT pg_notify($1, change) FROM unnest($2::text[]) AS change',
    values: [CHANGE_CHANNEL, changes.map((change) => JSON.stringify(change))],
  });
}

export interface ChangeListenerHandlers {
  onChange(change: MetadataChange): void;
  /** The connection was lost: changes may be missed until onListening, so nothing cached holds. */
  onReset(): void;
  /** Listening (again): changes from now on will arrive. */
  onListening?(): void;
  onError?(err: Error): void;
}

/** LISTENs on one dedicated connection and reconnects (with back-off) when it drops. */
export class ChangeListener {
  private client?: pg.Client;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly databaseUrl: string,
    private readonly handlers: ChangeListenerHandlers,
  ) {}

  /** Connects and listens; throws if the first attempt fails (a gateway must not start blind). */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    // Current before connecting, so a drop at any moment from here on is noticed.
    this.client = client;
    client.on('notification', (message) => {
      if (message.channel !== CHANGE_CHANNEL || !message.payload) return;
      try {
        this.handlers.onChange(JSON.parse(message.payload) as MetadataChange);
      } catch {
        this.handlers.onReset();
      }
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      if (this.client === client) this.client = undefined;
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.client !== client) return; // dropped while connecting: lost() has scheduled a retry
    this.handlers.onListening?.();
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (err) this.handlers.onError?.(err);
    this.handlers.onReset();
    if (!this.stopped) this.scheduleReconnect(250);
  }

  private scheduleReconnect(delayMs: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.connect().catch((err: Error) => {
        this.handlers.onError?.(err);
        if (!this.stopped) this.scheduleReconnect(Math.min(delayMs * 2, 5000));
      });
    }, delayMs);
    this.retryTimer.unref();
  }
}
