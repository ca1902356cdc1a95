/**
 * At most `limit` jobs of this process work on any one target region at once; the rest wait,
 * in arrival order, for a slot. This keeps one region that is catching up (a backfill of
 * thousands of jobs) from taking every gRPC stream the region can serve, and every job slot of
 * the worker with it. Several worker processes each keep their own bound.
 */
export class RegionLimiter {
  private readonly regions = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`a region limit must be a positive integer, not ${limit}`);
  }

  /** Runs `work` once `region` has a free slot; gives up waiting (rejecting with the abort reason) if `signal` aborts first. */
  async run<T>(region: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    const slots = this.slotsOf(region);
    if (slots.running >= this.limit) await this.waitForSlot(slots, signal);
    else slots.running++;
    try {
      return await work();
    } finally {
      const next = slots.waiting.shift();
      // The slot passes straight to the next waiter, so `running` never drops below the bound while jobs wait.
      if (next) next();
      else if (--slots.running === 0) this.regions.delete(region);
    }
  }

  /** Jobs waiting for a slot on `region` right now. */
  waiting(region: string): number {
    return this.regions.get(region)?.waiting.length ?? 0;
  }

  private slotsOf(region: string) {
    let slots = this.regions.get(region);
    if (!slots) this.regions.set(region, (slots = { running: 0, waiting: [] }));
    return slots;
  }

  private waitForSlot(slots: { waiting: Array<() => void> }, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const granted = () => {
        signal.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        slots.waiting.splice(slots.waiting.indexOf(granted), 1);
        reject(signal.reason);
      };
      slots.waiting.push(granted);
      signal.addEventListener('abort', aborted, { once: true });
    });
  }
}
