import type { Logger } from 'pino';

/** Asks one region whether it serves: resolves when it does, throws saying why not. */
export type RegionProbe = (region: { name: string; http: string }) => Promise<void>;

export interface HealthMonitorOptions {
  /** Time between the starts of two probes of one region. */
  intervalMs: number;
  /** A healthy region is taken out after this many failed probes in a row. */
  unhealthyAfter: number;
  /** An unhealthy region is put back after this many successful probes in a row. */
  healthyAfter: number;
  probe: RegionProbe;
  logger: Logger;
  /** Called whenever a region is taken out or put back. */
  onChange?: (name: string, healthy: boolean) => void;
}

/** What the monitor knows of one region. */
export interface RegionHealth {
  healthy: boolean;
  /** Whether any probe has answered yet (a region is unhealthy until one has). */
  probed: boolean;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  /** Why the last probe failed, while it keeps failing. */
  lastError?: string;
}

interface Tracked extends RegionHealth {
  http: string;
  probing: boolean;
  /** Settles once the region's first probe has answered. */
  firstAnswer: Promise<void>;
}

/**
 * Probes every region it tracks (`/readyz`, through the given probe) every `intervalMs`, one
 * probe per region at a time, and keeps each region's health with hysteresis: a healthy region
 * is taken out after `unhealthyAfter` failures in a row and put back after `healthyAfter`
 * successes in a row, so one lost probe does not move clients and a region that flaps is not
 * trusted at its first answer. A region's first probe decides its health at once, so the router
 * can route as soon as it has started. Changes are logged once each.
 */
export class HealthMonitor {
  private readonly regions = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: HealthMonitorOptions) {}

  /**
   * Makes the tracked set `regions`: new ones are probed at once, gone ones forgotten, and a
   * region whose endpoint changed is probed afresh. Resolves once every region of the set has
   * answered its first probe.
   */
  track(regions: ReadonlyArray<{ name: string; http: string }>): Promise<void> {
    const names = new Set(regions.map((region) => region.name));
    for (const name of this.regions.keys()) if (!names.has(name)) this.regions.delete(name);
    for (const { name, http } of regions) {
      const known = this.regions.get(name);
      if (known && known.http === http) continue;
      const entry: Tracked = { http, healthy: false, probed: false, probing: false, consecutiveFailures: 0, consecutiveSuccesses: 0, firstAnswer: Promise.resolve() };
      this.regions.set(name, entry);
      entry.firstAnswer = this.probe(name);
    }
    return Promise.all(regions.map(({ name }) => this.regions.get(name)!.firstAnswer)).then(() => undefined);
  }

  isHealthy(name: string): boolean {
    return this.regions.get(name)?.healthy === true;
  }

  /** Each tracked region's health, by name. */
  snapshot(): Map<string, RegionHealth> {
    return new Map(
      [...this.regions].map(([name, { healthy, probed, consecutiveFailures, consecutiveSuccesses, lastError }]) => [
        name,
        { healthy, probed, consecutiveFailures, consecutiveSuccesses, ...(lastError === undefined ? {} : { lastError }) },
      ]),
    );
  }

  /** Probes every tracked region once (as each interval does); resolves when all have answered. */
  async probeAll(): Promise<void> {
    await Promise.all([...this.regions.keys()].map((name) => this.probe(name)));
  }

  start(): void {
    this.timer = setInterval(() => void this.probeAll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async probe(name: string): Promise<void> {
    const region = this.regions.get(name);
    // A probe still waiting for its answer is not doubled: a slow region is one failure, not many.
    if (!region || region.probing) return;
    region.probing = true;
    let error: string | undefined;
    try {
      await this.options.probe({ name, http: region.http });
    } catch (err) {
      error = (err as Error)?.message ?? String(err);
    } finally {
      region.probing = false;
    }
    // Forgotten, or replaced by a new endpoint, while the probe ran: its answer is about nothing.
    if (this.regions.get(name) !== region) return;
    this.record(name, region, error);
  }

  private record(name: string, region: Tracked, error: string | undefined): void {
    const { unhealthyAfter, healthyAfter, logger, onChange } = this.options;
    const wasHealthy = region.healthy;
    if (error === undefined) {
      region.consecutiveSuccesses++;
      region.consecutiveFailures = 0;
      delete region.lastError;
      if (!region.healthy && (!region.probed || region.consecutiveSuccesses >= healthyAfter)) region.healthy = true;
    } else {
      region.consecutiveFailures++;
      region.consecutiveSuccesses = 0;
      region.lastError = error;
      if (region.healthy && region.consecutiveFailures >= unhealthyAfter) region.healthy = false;
    }
    const firstAnswer = !region.probed;
    region.probed = true;
    if (region.healthy === wasHealthy && !firstAnswer) return;
    if (region.healthy) logger.info({ region: name, http: region.http }, `region ${name} is healthy: routing to it`);
    else logger.warn({ region: name, http: region.http, reason: error }, `region ${name} is unhealthy (${error}): no routing to it`);
    if (region.healthy !== wasHealthy) onChange?.(name, region.healthy);
  }
}
