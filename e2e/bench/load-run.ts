/**
 * What the request-rate scenarios ask of a C load generator and what they get back, whichever
 * tool ran (wrk for GET, ab for HEAD).
 */
export interface LoadRunOptions {
  /** Scratch space for scripts and result files. */
  workDir: string;
  url: string;
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  /** wrk only: ab is single-threaded. */
  threads: number;
  connections: number;
  durationSeconds: number;
  /**
   * wrk only: request these paths (on `url`'s origin) in turn instead of `url`'s own, so a
   * blob pull spreads over every blob as the Node client's does.
   */
  paths?: readonly string[];
  /** wrk only: the CPUs it may run on (`taskset -c` syntax, e.g. `0`); any, when unset. */
  cpus?: string;
  /**
   * wrk only: each connection waits a random pause of this mean (exponentially distributed,
   * at most ten times it) after an answer before its next request, so the rate is about
   * `connections * 1000 / pauseMs` per second while answers are quick, arriving independently
   * of each other: a load below saturation, where latency is the server's time rather than the
   * queue's.
   */
  pauseMs?: number;
}

export interface LoadRunResult {
  tool: 'wrk' | 'ab';
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Socket errors, timeouts and non-2xx/3xx answers; a run with any is reported, not trusted. */
  errors: { socket: number; timeout: number; status: number };
  /** The generator's own user + system CPU seconds. */
  clientCpuSeconds: number;
  /** wrk only: every byte read, headers included, partial responses at the end too. */
  bytes?: number;
}
