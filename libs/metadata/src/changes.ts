import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Queryable } from './db.js';

/**
 * What a write changed, announced with NOTIFY inside the writing transaction, so it is delivered
 * exactly when (and only if) the change commits. Every gateway of the region listens and drops
 * what it cached about the named object. The outbox of the planned geo-replication is written at
 * the same point, in the same transaction.
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

export interface ChangeListenerOptions {
  /**
   * How often the listener sends itself a NOTIFY through its own connection. A connection cut
   * without a close (a NAT or load balancer dropping it, a partition) raises no event; only a
   * heartbeat that does not come back shows it, and then the listener resets and reconnects.
   */
  heartbeatMs?: number;
  /** How long without its own heartbeat back before the connection counts as lost. */
  heartbeatTimeoutMs?: number;
}

/** How the LISTEN connection shows in pg_stat_activity. */
export const CHANGE_LISTENER_APPLICATION_NAME = 'meridian-change-listener';

/** LISTENs on one dedicated connection and reconnects (with back-off) when it drops. */
export class ChangeListener {
  private client?: pg.Client;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  /** A channel only this listener listens on, so its heartbeats reach no one else. */
  private readonly heartbeatChannel = `meridian_heartbeat_${randomUUID().replaceAll('-', '')}`;

  constructor(
    private readonly databaseUrl: string,
    private readonly handlers: ChangeListenerHandlers,
    options: ChangeListenerOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 5000;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 3 * this.heartbeatMs;
  }

  /** Connects and listens; throws if the first attempt fails (a gateway must not start blind). */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    const client = this.client;
    this.client = undefined;
    if (client) await closeClient(client, 1000);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.databaseUrl,
      keepAlive: true,
      application_name: CHANGE_LISTENER_APPLICATION_NAME,
    });
    // Current before connecting, so a drop at any moment from here on is noticed.
    this.client = client;
    let heardAt = Date.now();
    client.on('notification', (message) => {
      if (message.channel === this.heartbeatChannel) {
        heardAt = Date.now();
        return;
      }
      if (message.channel !== CHANGE_CHANNEL || !message.payload) return;
      const change = parseChange(message.payload);
      // Anyone who may connect can NOTIFY this channel; a payload that is not a change is noise,
      // not a reason to stop caching.
      if (change) this.handlers.onChange(change);
      else this.handlers.onError?.(new Error(`ignored a malformed change notification: ${message.payload.slice(0, 100)}`));
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}; LISTEN ${this.heartbeatChannel}`);
    } catch (err) {
      if (this.client === client) this.client = undefined;
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.client !== client) return; // dropped while connecting: lost() has scheduled a retry
    heardAt = Date.now();
    let tickedAt = Date.now();
    let pinging = false;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      // A tick far behind schedule means this process was busy, not that the connection is
      // dead: the heartbeat may be waiting unread. Such a round judges nothing.
      const late = Date.now() - tickedAt > 2 * this.heartbeatMs;
      tickedAt = Date.now();
      // Judged after this turn of the event loop has read its sockets (timers run before I/O),
      // so a heartbeat that came back while the loop was busy counts.
      setImmediate(() => {
        if (this.client !== client) return;
        if (!late && Date.now() - heardAt > this.heartbeatTimeoutMs) {
          this.lost(client, new Error(`no heartbeat back on the LISTEN connection for ${this.heartbeatTimeoutMs} ms`));
          return;
        }
        // One heartbeat at a time: on a stalled connection they would only queue up.
        if (pinging) return;
        pinging = true;
        client
          .query(`NOTIFY ${this.heartbeatChannel}`)
          .catch(() => undefined)
          .finally(() => (pinging = false));
      });
    }, this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.handlers.onListening?.();
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.heartbeatTimer);
    void closeClient(client, 0);
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

/**
 * Ends a client without waiting more than `waitMs` on it: a connection that went silent would
 * hold end() until the kernel gives up on it, minutes later. Its socket is then destroyed.
 */
async function closeClient(client: pg.Client, waitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([client.end().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
  clearTimeout(timer);
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

function parseChange(payload: string): MetadataChange | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const change = value as Record<string, unknown>;
  if (typeof change.repository !== 'string') return undefined;
  if (change.kind === 'tag' && typeof change.tag === 'string') return change as MetadataChange;
  if ((change.kind === 'manifest' || change.kind === 'blob') && typeof change.digest === 'string') return change as MetadataChange;
  return undefined;
}
