/**
 * Which reads (GET and HEAD requests) start a trace: a share of them (`ratio`), and at most
 * `perSecond` of those in any one second of a process. Reads are the bulk of a registry's
 * requests, and a traced one costs its process far more than an untraced one (its spans, their
 * export, and the context propagation that is on while they are open, for every request in flight
 * alongside): the ratio alone made that cost grow with the load, so that a gateway answering
 * thousands of manifest GETs a second traced dozens of them every second, more than anyone reads
 * and enough to cost every pull a share of its CPU. With the cap, tracing costs a busy process a
 * bounded amount per second, and a quiet one still traces its share of reads.
 */
export interface ReadSamplerOptions {
  /** The share of reads traced, 0 to 1. */
  ratio: number;
  /** Reads traced at most per second of this process. */
  perSecond: number;
  /** Milliseconds of a monotonic clock (performance.now); tests pass their own. */
  now?: () => number;
  /** A number in [0, 1) (Math.random); tests pass their own. */
  random?: () => number;
}

export class ReadSampler {
  private readonly now: () => number;
  private readonly random: () => number;
  private second = Number.NaN;
  private tracedThisSecond = 0;

  constructor(private readonly options: ReadSamplerOptions) {
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
  }

  /** Whether the read arriving now starts a trace. */
  traces(): boolean {
    if (this.random() >= this.options.ratio) return false;
    const second = Math.floor(this.now() / 1000);
    if (second !== this.second) {
      this.second = second;
      this.tracedThisSecond = 0;
    }
    if (this.tracedThisSecond >= this.options.perSecond) return false;
    this.tracedThisSecond += 1;
    return true;
  }
}
