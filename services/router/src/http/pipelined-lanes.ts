import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { AnswerReader, MalformedAnswerError, type AnswerSink } from './answer-reader.js';

/**
 * undici's raw handler callbacks, the ones its core calls (its types mark them deprecated in
 * favour of the controller form, which wraps them; see RegionProxy), which PipelinedLanes calls
 * too. `onHeaders` has the header lines as `[name, value, ...]`, as buffers from undici and as
 * latin1 strings from PipelinedLanes. `onHeaders` and `onData` return false to pause the region's
 * socket until `resume` is called.
 */
export interface RawDispatchHandler {
  onConnect(abort: (reason: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: unknown): void;
  onError(err: Error): void;
}

/** Where a request goes: what both RegionDispatchers take. */
export interface RawDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: RawDispatchHandler): void;
}

export interface PipelinedLanesOptions {
  /**
   * Opens a connection to a region's origin (ClusterHttp.connect: the cluster's authorities, its
   * connect timeout). A lane has one to each region it is used for.
   */
  connect(origin: URL, callback: (err: Error | null, socket: Socket | null) => void): void;
  /** Lanes each region starts with, and takes turns on. */
  minLanes: number;
  /** Lanes a region may have when all it has are full; past them, requests go to `overflow`. */
  maxLanes: number;
  depth: number;
  /** A lane whose oldest request has not been answered in full for this long is stalled. */
  stallMs: number;
  /** How long a connection with requests in flight may go without a byte from the region (the headers and body timeout). */
  timeoutMs: number;
  /**
   * Where a request goes when every lane is full or stalled, and where a request waiting behind a
   * stalled one is sent again: one request per connection, never behind another.
   */
  overflow: RawDispatcher;
}

/** The region took longer than the timeout to send the next byte of an answer. */
export class AnswerTimeoutError extends Error {
  override name = 'AnswerTimeoutError';
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
}

/** A lane's connection went before the request was answered, more often than a request is sent again. */
class ConnectionLostError extends Error {
  override name = 'ConnectionLostError';
}

/**
 * How many times a request is sent again on a new connection after the one it was on was lost
 * before its answer began (the region closed a connection it held idle just as the request went,
 * or a gateway process went): a request that each time goes with its connection fails then.
 */
const MAX_RESENDS = 2;

/** A request on a lane, from its dispatch to the end of its answer. */
class Entry {
  /** Sent again elsewhere (or failed): what comes on this lane for it is read and dropped. */
  resent = false;
  /** Times sent again on a new connection of the lane. */
  resends = 0;
  /** Its answer's head has been passed on. */
  answered = false;

  constructor(
    readonly options: Dispatcher.DispatchOptions,
    readonly handler: RawDispatchHandler,
    /** The request's head, as it goes out. */
    readonly head: string,
    readonly bodyless: boolean,
  ) {}
}

/** A no-op `resume`: a lane never pauses its connection (its answers are bounded). */
const RUNNING = () => undefined;

/**
 * One pipelined connection to one region (HTTP/1.1 pipelining, RFC 9112 §9.3.2), a connection
 * at a time: its requests in the order they were sent, which is the order of their answers.
 * Request heads written in one turn of the event loop leave in one write; answers are read with
 * AnswerReader. When the connection goes, the requests not yet answered are sent again, in order,
 * on a new one (they are GETs and HEADs, safe to send twice: RFC 9110 §9.2.2); the one being
 * answered fails, as does one sent again MAX_RESENDS times already.
 */
class Lane implements AnswerSink {
  readonly queue: Entry[] = [];
  /** When the request at the head of `queue` got there (performance.now(): monotonic, so a step of the wall clock neither hides a stall nor invents one). */
  headSince = 0;
  private socket: Socket | undefined;
  private reader: AnswerReader | undefined;
  private connecting = false;
  /** The router is closing: nothing is sent again, no connection opened. */
  private closed = false;
  /** Heads written this turn, not yet sent. */
  private pending = '';
  private readonly flush = () => this.send();

  constructor(
    readonly region: Lane[],
    /** The region's origin, as dispatched. */
    readonly origin: string,
    private readonly url: URL,
    private readonly lanes: PipelinedLanes,
    private readonly options: PipelinedLanesOptions,
  ) {}

  push(entry: Entry): void {
    this.queue.push(entry);
    entry.handler.onConnect((reason) => this.abort(entry, reason));
    if (this.socket !== undefined) this.write(entry);
    else if (!this.connecting) this.open();
  }

  /** Lets go of the connection (the router is closing): what is still in flight fails. */
  close(): void {
    this.closed = true;
    this.socket?.destroy();
  }

  private write(entry: Entry): void {
    if (this.pending === '') setImmediate(this.flush);
    this.pending += entry.head;
  }

  private send(): void {
    const pending = this.pending;
    this.pending = '';
    if (pending !== '' && this.socket !== undefined) this.socket.write(pending, 'latin1');
  }

  private open(): void {
    if (this.closed) {
      for (const entry of [...this.queue]) this.fail(entry, new Error('the router is closing'));
      return;
    }
    if (this.connecting) return;
    this.connecting = true;
    this.options.connect(this.url, (err, socket) => {
      this.connecting = false;
      if (err || !socket) {
        // Nothing was sent: every request fails, and may be tried at the next region.
        for (const entry of [...this.queue]) this.fail(entry, err ?? new Error('no connection'));
        return;
      }
      if (this.closed) {
        socket.destroy();
        for (const entry of [...this.queue]) this.fail(entry, new Error('the router is closing'));
        return;
      }
      this.socket = socket;
      this.reader = new AnswerReader(this);
      this.pending = '';
      socket.setTimeout(this.options.timeoutMs);
      socket.on('data', (chunk: Buffer) => this.read(socket, chunk));
      socket.on('timeout', () => this.lost(socket, new AnswerTimeoutError(`no answer from ${this.url.host} within ${this.options.timeoutMs} ms`), true));
      socket.on('error', (cause: Error) => this.lost(socket, cause, false));
      socket.on('close', () => this.lost(socket, undefined, false));
      // Requests sent elsewhere meanwhile need not go again here.
      for (const entry of [...this.queue]) if (entry.resent) this.lanes.finish(this, entry);
      for (const entry of this.queue) this.write(entry);
    });
  }

  private read(socket: Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    try {
      this.reader!.push(chunk);
    } catch (err) {
      this.lost(socket, err as Error, true);
    }
  }

  head(status: number, statusText: string, headers: string[]): boolean {
    const entry = this.queue[0];
    // An answer with no request for it (a region answering twice): nothing can be trusted here after it.
    if (entry === undefined) throw new MalformedAnswerError(`an answer (${status}) to no request`);
    entry.answered = true;
    if (!entry.resent) entry.handler.onHeaders(status, headers, RUNNING, statusText);
    return !entry.bodyless;
  }

  data(chunk: Buffer): void {
    const entry = this.queue[0]!;
    if (!entry.resent) entry.handler.onData(chunk);
  }

  end(close: boolean): void {
    const entry = this.queue[0]!;
    this.lanes.finish(this, entry);
    if (!entry.resent) entry.handler.onComplete(null);
    if (close) this.retire();
  }

  /** The region closes the connection after this answer: the requests behind it go on a new one. */
  private retire(): void {
    const socket = this.socket;
    if (socket === undefined) return;
    this.detach(socket);
    socket.end();
    if (this.queue.length > 0) this.open();
  }

  private detach(socket: Socket): void {
    this.socket = undefined;
    this.reader?.stop();
    this.reader = undefined;
    this.pending = '';
    socket.setTimeout(0);
  }

  /**
   * The connection went (`cause` undefined: closed by the region) or is given up. The request
   * being answered fails, as does the head when `headAtFault` (a timeout, a malformed answer);
   * the others go again on a new connection.
   */
  private lost(socket: Socket, cause: Error | undefined, headAtFault: boolean): void {
    if (socket !== this.socket) return;
    const answering = this.reader?.answering ?? false;
    let closedCleanly = cause === undefined;
    if (closedCleanly) {
      // An answer that runs to the close is complete now; one cut short is not.
      try {
        this.reader?.closed();
      } catch (err) {
        cause = err as Error;
        closedCleanly = false;
      }
      // The answer that ran to the close said so, and its lane has moved on already.
      if (socket !== this.socket) return;
    }
    this.detach(socket);
    socket.destroy();
    if (this.queue.length === 0) return;
    const head = this.queue[0]!;
    if (!closedCleanly && (headAtFault || answering || head.answered)) this.fail(head, cause!);
    for (const entry of [...this.queue]) {
      if (entry.resent) {
        this.lanes.finish(this, entry);
        continue;
      }
      if (++entry.resends > MAX_RESENDS) this.fail(entry, cause ?? new ConnectionLostError(`${this.url.host} closed the connection before answering, ${MAX_RESENDS + 1} times`));
    }
    if (this.queue.length > 0) this.open();
  }

  /** The request fails: it leaves the lane, its handler told (its connection is given up by the caller, or it is not yet sent). */
  private fail(entry: Entry, cause: Error): void {
    this.lanes.finish(this, entry);
    if (entry.resent) return;
    entry.resent = true;
    entry.handler.onError(cause);
  }

  /** The request's handler gives it up (its answer is larger than a manifest may be). */
  private abort(entry: Entry, reason: Error): void {
    if (entry.resent) return;
    const socket = this.socket;
    if (entry === this.queue[0] && socket !== undefined && entry.answered) {
      // Its answer is being read: only dropping the connection stops it.
      this.lost(socket, reason, true);
      return;
    }
    // Not yet answered: its answer, when it comes, is read and dropped.
    entry.resent = true;
    entry.handler.onError(reason);
  }
}

/**
 * The pipelined connections to the regions (RegionDispatchers.pipelined), spread and kept from
 * stalling:
 *
 * - **Spread.** Each region has `minLanes` connections (more, up to `maxLanes`, while all are
 *   full), and each request goes to the lane with the fewest in flight, taking turns among equals,
 *   so that a region whose worker processes accept connections themselves (libs/supervisor) gets
 *   the router's requests on more than one of them.
 * - **No waiting behind a stalled answer.** Answers on a connection come in order (RFC 9112
 *   §9.3.2), so one the region is slow to give (a manifest it first reads from a peer) holds up
 *   every request behind it. A lane whose head has not been answered within `stallMs` takes no
 *   new requests, and those already behind it are sent again on connections of their own
 *   (`overflow`); what the stalled lane answers for them later is read and dropped. They are GETs
 *   and HEADs, safe to send twice (RFC 9110 §9.2.2). New requests go to `overflow` too while every
 *   lane is full or stalled, and there are `maxLanes`.
 * - **Lean.** A request's head is written as one string, with those of the same turn, and its
 *   answer read by AnswerReader and handed on as header strings and body slices: no request
 *   object, no header validation (the router's own server checked the client's), no parser
 *   crossing into wasm. This path carries most of what clients ask (manifests, HEADs), so its
 *   cost per request is most of the router's.
 */
export class PipelinedLanes implements RawDispatcher {
  private readonly regions = new Map<string, Lane[]>();
  /** Where the search for the least busy lane starts, moved on each time so that equals take turns. */
  private turn = 0;
  private inFlight = 0;
  private sweep: NodeJS.Timeout | undefined;
  /** Each origin's URL and `host` header line, worked out once. */
  private readonly origins = new Map<string, { url: URL; host: string }>();
  /** Lanes let go of after a burst, each region's, kept with their connections for the next. */
  private readonly spare = new Map<string, Lane[]>();

  constructor(private readonly options: PipelinedLanesOptions) {}

  dispatch(options: Dispatcher.DispatchOptions, handler: RawDispatchHandler): void {
    const now = performance.now();
    const originKey = String(options.origin);
    const lane = this.pick(originKey, now);
    if (lane === undefined) {
      this.options.overflow.dispatch(options, handler);
      return;
    }
    const entry = new Entry(options, handler, this.head(originKey, options), options.method === 'HEAD');
    if (lane.queue.length === 0) lane.headSince = now;
    this.inFlight++;
    // Stopped by the first check that finds nothing in flight, not as soon as nothing is: a router
    // under light load would otherwise make and clear a timer for every request.
    this.sweep ??= setInterval(() => this.rescue(), Math.max(1, this.options.stallMs / 2)).unref();
    lane.push(entry);
  }

  /** Stops the stall checks and closes the lanes' connections. */
  close(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
    for (const lanes of [...this.regions.values(), ...this.spare.values()]) for (const lane of lanes) lane.close();
  }

  /** The request line and header lines, as one string (header values come from the router's own server, which checked them). */
  private head(origin: string, options: Dispatcher.DispatchOptions): string {
    let head = `${options.method} ${options.path} HTTP/1.1\r\n${this.originOf(origin).host}`;
    const headers = options.headers as string[];
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    return `${head}\r\n`;
  }

  private originOf(origin: string): { url: URL; host: string } {
    let known = this.origins.get(origin);
    if (known === undefined) {
      const url = new URL(origin);
      this.origins.set(origin, (known = { url, host: `host: ${url.host}\r\n` }));
    }
    return known;
  }

  /** The region's least busy lane that is neither full nor stalled, a new one if all are, or none past `maxLanes`. */
  private pick(origin: string, now: number): Lane | undefined {
    let lanes = this.regions.get(origin);
    if (lanes === undefined) {
      lanes = [];
      while (lanes.length < this.options.minLanes) lanes.push(this.newLane(origin, lanes));
      this.regions.set(origin, lanes);
    }
    const count = lanes.length;
    let best: Lane | undefined;
    let bestIndex = 0;
    for (let i = 0; i < count; i++) {
      const index = (this.turn + i) % count;
      const lane = lanes[index]!;
      const load = lane.queue.length;
      if (load >= this.options.depth || (load > 0 && now - lane.headSince >= this.options.stallMs)) continue;
      if (best === undefined || load < best.queue.length) {
        best = lane;
        bestIndex = index;
        if (load === 0) break;
      }
    }
    if (best === undefined && count < this.options.maxLanes) {
      lanes.push((best = this.newLane(origin, lanes)));
      bestIndex = count;
    }
    this.turn = (bestIndex + 1) % lanes.length;
    return best;
  }

  private newLane(origin: string, region: Lane[]): Lane {
    return this.spare.get(origin)?.pop() ?? new Lane(region, origin, this.originOf(origin).url, this, this.options);
  }

  /** The request leaves its lane (answered, failed or given up). */
  finish(lane: Lane, entry: Entry): void {
    // Answers come in order: the finished request is nearly always the head.
    const index = lane.queue[0] === entry ? 0 : lane.queue.indexOf(entry);
    if (index < 0) return;
    if (index === 0) lane.queue.shift();
    else lane.queue.splice(index, 1);
    if (index === 0) lane.headSince = performance.now();
    // Lanes opened past `minLanes` for a burst are let go once idle, last first, so that the
    // region's requests gather on fewer connections again.
    const region = lane.region;
    while (region.length > this.options.minLanes && region[region.length - 1]!.queue.length === 0) {
      const spare = this.spare.get(lane.origin) ?? [];
      this.spare.set(lane.origin, spare);
      spare.push(region.pop()!);
    }
    this.inFlight--;
  }

  /** Sends the requests waiting behind a stalled head again, each on a connection of its own. */
  private rescue(): void {
    if (this.inFlight === 0) {
      clearInterval(this.sweep);
      this.sweep = undefined;
      return;
    }
    const now = performance.now();
    for (const lanes of this.regions.values()) {
      for (const lane of lanes) {
        if (lane.queue.length < 2 || now - lane.headSince < this.options.stallMs) continue;
        for (let i = 1; i < lane.queue.length; i++) {
          const entry = lane.queue[i]!;
          if (entry.resent) continue;
          entry.resent = true;
          this.options.overflow.dispatch(entry.options, entry.handler);
        }
      }
    }
  }
}
