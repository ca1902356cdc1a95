import type { IncomingMessage } from 'node:http';

/**
 * Which requests of one kind (reads: GET and HEAD; writes: everything else) start a trace: a share
 * of them (`ratio`), and at most `perSecond` of those in any one second of a process. A traced
 * request costs its process far more than an untraced one (its spans, their export, and the
 * context propagation that is on while they are open, for every request in flight alongside):
 * a ratio alone made that cost grow with the load, so that a gateway answering thousands of
 * manifest GETs a second traced dozens of them every second, more than anyone reads and enough to
 * cost every pull a share of its CPU, and one taking hundreds of pushes a second traced each. With
 * the cap, tracing costs a busy process a bounded amount per second, and a quiet one still traces
 * its share.
 */
export interface RequestSamplerOptions {
  /** The share of requests traced, 0 to 1. */
  ratio: number;
  /** Requests traced at most per second of this process. */
  perSecond: number;
  /** Milliseconds of a monotonic clock (performance.now); tests pass their own. */
  now?: () => number;
  /** A number in [0, 1) (Math.random); tests pass their own. */
  random?: () => number;
}

export class RequestSampler {
  private readonly now: () => number;
  private readonly random: () => number;
  private second = Number.NaN;
  private tracedThisSecond = 0;

  constructor(private readonly options: RequestSamplerOptions) {
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
  }

  /** Whether the request arriving now starts a trace. */
  traces(): boolean {
    return this.drawn() && this.withinCap();
  }

  /** The ratio's draw alone: whether the request is in the share traced, before the cap. */
  drawn(): boolean {
    return this.options.ratio >= 1 || this.random() < this.options.ratio;
  }

  /** The cap alone, for a request drawn: whether this second has room for one more trace, which it then takes. */
  withinCap(): boolean {
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

/** Requests nobody needs a trace of: scrapes and probes, which come every few seconds. */
const UNTRACED_PATHS = new Set(['/metrics', '/healthz', '/readyz']);

/** A W3C `traceparent` (version-trace-parent-flags) whose flags say its trace is not recorded. */
const UNSAMPLED_PARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f][02468ace]/;

export interface IncomingRequestSampling {
  /** For GET and HEAD requests. */
  reads: RequestSampler;
  /** For every other method: pushes, deletes, a region's relayed changes. */
  writes: RequestSampler;
}

/**
 * Whether an incoming HTTP request starts (or joins) a trace: the decision at a trace's head,
 * taken in the HTTP instrumentation's ignore hook, before the instrumentation makes a span or
 * enters a context, so that a request left out costs next to nothing. A caller's `traceparent`
 * saying its trace is not recorded is followed (parent-based, as every span with a parent is);
 * one saying it is counts against the caps like any other request, so that no caller can make a
 * process trace more than its caps allow.
 */
export function tracesIncomingRequest(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, { reads, writes }: IncomingRequestSampling): boolean {
  const sampler = req.method === 'GET' || req.method === 'HEAD' ? reads : writes;
  // The draw first: it leaves out nearly every pull (99 in 100 by default) before the path or
  // the headers are looked at, on the path of every manifest GET.
  if (!sampler.drawn()) return false;
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  if (UNTRACED_PATHS.has(queryStart === -1 ? url : url.slice(0, queryStart))) return false;
  const parent = req.headers.traceparent;
  if (typeof parent === 'string' && UNSAMPLED_PARENT.test(parent)) return false;
  return sampler.withinCap();
}
