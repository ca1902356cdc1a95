import type { Logger } from 'pino';
import type { AuditEntry, Metadata } from '@meridian/metadata';
import type { AuditBatch } from '@meridian/proto/audit';
import type { ControlPlaneHttp } from '@meridian/proto/control-plane-http';

export interface AuditShipperOptions {
  region: string;
  /** The control plane's admin API, as this region calls it (with its service token). */
  controlPlane: ControlPlaneHttp;
  metadata: Metadata;
  /** Whether this process is the region's relay now: one process of the region ships. */
  isLeading(): boolean;
  logger: Logger;
  /** Entries per POST. */
  batchSize?: number;
  /** How often the queue of unshipped entries is looked at. */
  intervalMs?: number;
}

/**
 * Hands the region's audit entries to the control plane, which keeps the log of every region
 * (`meridian audit` against it shows them all). At least once: an entry leaves the region's
 * queue (`audit_unshipped`) only after the control plane said it stored it, and the control
 * plane ignores an entry it holds already (region and id). Runs in the process that holds the
 * outbox relay's lock; the audit log is not on the write path, so a poll every second is enough,
 * and a control plane that is away is simply tried again at the next one.
 */
export class AuditShipper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private failing = false;
  private readonly batchSize: number;
  private readonly intervalMs: number;

  constructor(private readonly options: AuditShipperOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.intervalMs = options.intervalMs ?? 1000;
  }

  start(): void {
    const tick = () => {
      this.running = (this.options.isLeading() ? this.shipAll() : Promise.resolve()).finally(() => {
        this.running = undefined;
        this.timer = setTimeout(tick, this.intervalMs);
        this.timer.unref();
      });
    };
    this.timer = setTimeout(tick, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.running;
    clearTimeout(this.timer);
  }

  /** Ships everything queued now; failures are logged once and retried at the next tick. */
  async shipAll(): Promise<void> {
    try {
      for (;;) {
        const entries = await this.options.metadata.audit.unshipped(this.batchSize);
        if (entries.length === 0) break;
        await this.post(entries);
        await this.options.metadata.audit.markShipped(entries.map((entry) => entry.id));
        if (entries.length < this.batchSize) break;
      }
      if (this.failing) this.options.logger.info('audit shipper: the control plane takes audit entries again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.options.logger.warn({ reason: (err as Error).message }, 'audit shipper: audit entries not delivered to the control plane; retrying');
      this.failing = true;
    }
  }

  private async post(entries: AuditEntry[]): Promise<void> {
    const batch: AuditBatch = {
      region: this.options.region,
      entries: entries.map((entry) => ({ ...entry, at: entry.at.toISOString() })),
    };
    await this.options.controlPlane.send('POST', '/api/v1/audit/batches', batch);
  }
}
