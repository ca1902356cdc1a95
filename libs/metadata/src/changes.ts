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

export async function announceChange(db: Queryable, change: MetadataChange): Promise<void> {
  await db.query({ name: 'announce-change', text: 'SELECT pg_notify($1, $2)', values: [CHANGE_CHANNEL, JSON.stringify(change)] });
}

export interface ChangeListenerHandlers {
  onChange(change: MetadataChange): void;
  /** The connection was lost: changes may have been missed, so everything cached is suspect. */
  onReset(): void;
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

  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
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
    await client.connect();
    await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    this.client = client;
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (err) this.handlers.onError?.(err);
    this.handlers.onReset();
    if (!this.stopped) this.scheduleReconnect(250);
  }

  private scheduleReconnect(delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      this.connect()
        .then(() => this.handlers.onReset())
        .catch((err: Error) => {
          this.handlers.onError?.(err);
          if (!this.stopped) this.scheduleReconnect(Math.min(delayMs * 2, 5000));
        });
    }, delayMs);
    this.retryTimer.unref();
  }
}
