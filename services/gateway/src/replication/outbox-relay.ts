import pg from 'pg';
import type { Logger } from 'pino';
import { OUTBOX_CHANNEL, type Metadata, type OutboxEntry } from '@meridian/metadata';
import { REPLICATION_TARGET_STATES, RegionListSchema } from '@meridian/proto';
import type { ChangeBatch } from '@meridian/proto/changes';
import type { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import { SpanKind, inSpan, linkTo } from '@meridian/telemetry';

export interface OutboxRelayOptions {
  region: string;
  /** The control plane's admin API, as this region calls it (with its service token). */
  controlPlane: ControlPlaneHttp;
  /** The region's database: the relay holds one connection of its own for its lock and LISTEN. */
  databaseUrl: string;
  metadata: Metadata;
  logger: Logger;
  /** Changes per POST. */
  batchSize?: number;
  /**
   * The outbox is looked at this often even if nothing woke the relay: a safety net under NOTIFY,
   * and how a blob link that no manifest push follows is found (a blob link wakes no one).
   */
  pollMs?: number;
  heartbeatMs?: number;
  /** How long a standby relay waits before asking for the lock again. */
  standbyMs?: number;
}

/** Every relay of every region asks for this lock in its own region's database. */
const RELAY_LOCK_KEY = 0x6d657264; // "merd"
const MAX_BACKOFF_MS = 10_000;

/**
 * Hands the region's outbox to the control plane: at least once (a change leaves the outbox only
 * after the control plane said it stored it, and the control plane ignores one it already has),
 * in the order of the outbox, and with back-off while the control plane is away, so the region
 * goes on taking pushes and they replicate once it is back. One gateway process of the region
 * relays at a time (a session-level advisory lock in the region's database); the others stand by
 * and take over if it dies. It also sends the region's heartbeat.
 */
export class OutboxRelay {
  private client?: pg.Client;
  private stopped = false;
  private leading = false;
  private draining?: Promise<void>;
  private again = false;
  private failures = 0;
  private timers = new Set<NodeJS.Timeout>();
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly standbyMs: number;

  constructor(private readonly options: OutboxRelayOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.pollMs = options.pollMs ?? 1000;
    this.heartbeatMs = options.heartbeatMs ?? 5000;
    this.standbyMs = options.standbyMs ?? 5000;
  }

  /** Starts trying to become the region's relay; never throws (a database away now is retried). */
  start(): void {
    void this.contend();
    this.every(this.heartbeatMs, () => this.heartbeat());
  }

  /** Whether this process is the region's relay right now. */
  get isLeading(): boolean {
    return this.leading;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.draining?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    this.leading = false;
    // Closing the session releases the advisory lock: a standby takes over within its wait.
    await client?.end().catch(() => undefined);
  }

  /** Relays everything in the outbox now (tests, and the wake-up on NOTIFY). */
  drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = this.drainAll().finally(() => {
      this.draining = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.drain();
      }
    });
    return this.draining;
  }

  private async contend(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.options.databaseUrl, application_name: 'meridian-outbox-relay', keepAlive: true });
    client.on('error', (err) => this.options.logger.warn({ err }, 'outbox relay: database connection lost'));
    client.on('end', () => {
      if (this.client !== client) return;
      this.client = undefined;
      this.leading = false;
      this.later(this.standbyMs, () => this.contend());
    });
    try {
      await client.connect();
      const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RELAY_LOCK_KEY]);
      if (!locked.rows[0]?.ok || this.stopped) {
        await client.end();
        this.later(this.standbyMs, () => this.contend());
        return;
      }
      this.client = client;
      client.on('notification', () => void this.drain());
      await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
      this.leading = true;
      this.options.logger.info({ controlPlane: this.options.controlPlane.url }, 'outbox relay started: this process relays the region\'s changes');
      this.every(this.pollMs, () => (this.leading ? this.drain() : Promise.resolve()));
      void this.drain();
    } catch (err) {
      await client.end().catch(() => undefined);
      this.options.logger.warn({ err }, 'outbox relay: cannot reach the region database; retrying');
      this.later(this.standbyMs, () => this.contend());
    }
  }

  private async drainAll(): Promise<void> {
    while (this.leading && !this.stopped) {
      const entries = await this.options.metadata.outbox.oldest(this.batchSize).catch((err) => {
        this.options.logger.warn({ err }, 'outbox relay: reading the outbox failed');
        return [];
      });
      if (entries.length === 0) return;
      try {
        await this.deliver(entries);
      } catch (err) {
        this.failures++;
        // Said once when the control plane goes away, then quietly retried with back-off.
        if (this.failures === 1) this.options.logger.warn({ err: describe(err), backlog: entries.length }, 'outbox relay: the control plane did not take the changes; retrying with back-off');
        await this.pause(Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.failures, 6)));
        continue;
      }
      if (this.failures > 0) this.options.logger.info({ after: this.failures }, 'outbox relay: the control plane takes changes again');
      this.failures = 0;
      await this.options.metadata.outbox.remove(entries.map((entry) => entry.seq));
    }
  }

  /** One POST of a batch; its span links to the trace of every change it carries. */
  private deliver(entries: OutboxEntry[]): Promise<void> {
    const links = entries.flatMap((entry) => linkTo(entry.trace));
    return inSpan('outbox.relay', { kind: SpanKind.PRODUCER, links, attributes: { 'meridian.changes': entries.length } }, () => this.post(entries));
  }

  private async post(entries: OutboxEntry[]): Promise<void> {
    const batch: ChangeBatch = {
      origin: this.options.region,
      changes: entries.map((entry) => ({
        origin: this.options.region,
        seq: entry.seq,
        hlc: entry.hlc,
        at: entry.createdAt.toISOString(),
        body: entry.body,
        ...(entry.trace ? { trace: entry.trace } : {}),
      })),
    };
    await this.options.controlPlane.send('POST', '/api/v1/changes', batch);
  }

  private async heartbeat(): Promise<void> {
    if (!this.leading) return;
    // A missed heartbeat is made up for by the next one.
    await this.options.controlPlane.send('POST', `/api/v1/regions/${encodeURIComponent(this.options.region)}/heartbeat`).catch(() => undefined);
    await this.openFenceOnceRegistered().catch((err: Error) => this.options.logger.warn({ err }, 'could not learn whether the purged region is registered again'));
  }

  /**
   * A purge closed the region's fence (ReplicationFenceStore) for good: a worker whose queue lock
   * lapsed may still be applying a job here. It opens only when the control plane, asked after the
   * fence closed, lists the region as taking replication: registered again. While a purge runs
   * the region is draining, and once purged the control plane no longer lists it, so no answer
   * about the removed region opens it.
   */
  private async openFenceOnceRegistered(): Promise<void> {
    const since = await this.options.metadata.fence.closedSince();
    if (since === undefined) return;
    const { regions } = RegionListSchema.parse(await this.options.controlPlane.json('GET', '/api/v1/regions'));
    const self = regions.find((region) => region.name === this.options.region);
    if (!self || !REPLICATION_TARGET_STATES.has(self.state)) return;
    if (await this.options.metadata.fence.open(since)) this.options.logger.info({ state: self.state }, 'registered in the cluster again after a purge: replicated writes are taken again');
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => this.later(ms, resolve));
  }

  private later(ms: number, work: () => unknown): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void work();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  /** Runs `work` every `ms`, one run at a time, until stopped. */
  private every(ms: number, work: () => Promise<unknown>): void {
    this.later(ms, async () => {
      await work().catch(() => undefined);
      this.every(ms, work);
    });
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: { code?: string } }).cause?.code;
  return cause ? `${err.message} (${cause})` : err.message;
}
