import type { Dispatcher } from 'undici';
import type { Socket } from 'node:net';

/**
 * undici's raw handler callbacks, the ones its core calls (its types mark them deprecated in
 * favour of the controller form, which wraps them; see RegionProxy). `onHeaders` and `onData`
 * return false to pause the region's socket until `resume` is called.
 */
export interface RawDispatchHandler {
  onConnect(abort: (reason: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
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
   * Makes the dispatcher of a lane: one connection to a region (undici `connections: 1`) that
   * pipelines up to `depth` requests. Every region gets a connection from each lane it uses.
   */
  newLane(): Dispatcher;
  /** Lanes each region starts with, and takes turns on. */
  minLanes: number;
  /** Lanes a region may have when all it has are full; past them, requests go to `overflow`. */
  maxLanes: number;
  depth: number;
  /** A lane whose oldest request has not been answered in full for this long is stalled. */
  stallMs: number;
  /**
   * Where a request goes when every lane is full or stalled, and where a request waiting behind a
   * stalled one is sent again: one request per connection, never behind another.
   */
  overflow: Dispatcher;
}

/**
 * A request on a lane, from its dispatch to the end of its answer: the handler undici is given,
 * passing each callback on to the request's own handler unless the request was sent again
 * elsewhere. A class, so that a request allocates one object rather than a handler of closures.
 */
class Entry implements RawDispatchHandler {
  /** Sent again elsewhere: what comes on this lane for it is read and dropped. */
  resent = false;

  constructor(
    readonly options: Dispatcher.DispatchOptions,
    readonly handler: RawDispatchHandler,
    private readonly lane: Lane,
    private readonly finished: (lane: Lane, entry: Entry) => void,
  ) {}

  onConnect(abort: (reason: Error) => void): void {
    if (!this.resent) this.handler.onConnect(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.resent || this.handler.onHeaders(statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    return this.resent || this.handler.onData(chunk);
  }

  onComplete(trailers: unknown): void {
    this.finished(this.lane, this);
    if (!this.resent) this.handler.onComplete(trailers);
  }

  onError(err: Error): void {
    this.finished(this.lane, this);
    if (!this.resent) this.handler.onError(err);
  }
}

/** One pipelined connection to one region: its requests in the order they were sent, which is the order of their answers. */
interface Lane {
  dispatcher: Dispatcher;
  /** The region's lanes, this one among them. */
  region: Lane[];
  queue: Entry[];
  /** When the request at the head of `queue` got there (performance.now(): monotonic, so a step of the wall clock neither hides a stall nor invents one). */
  headSince: number;
}

/**
 * The pipelined connections to the regions (RegionDispatchers.pipelined), spread and kept from
 * stalling:
 *
 * - **Spread.** Each region gets one connection from each lane, and each request goes to the lane
 *   with the fewest in flight, taking turns among equals. undici's own pool fills one connection
 *   to its pipelining depth before it opens the next, so a router under light load had one or two
 *   connections to a region, and a region whose worker processes accept connections themselves
 *   (libs/supervisor) could have all of them, and all routed traffic, on one worker.
 * - **No waiting behind a stalled answer.** Answers on a connection come in order (RFC 9112
 *   §9.3.2), so one the region is slow to give (a manifest it first reads from a peer) holds up
 *   every request behind it, and only the head of the line has a timeout running. A lane whose
 *   head has not been answered within `stallMs` takes no new requests, and those already behind
 *   it are sent again on connections of their own (`overflow`); what the stalled lane answers for
 *   them later is read and dropped. They are GETs and HEADs, safe to send twice (RFC 9110 §9.2.2).
 *   New requests go to `overflow` too while every lane is full or stalled, and there are
 *   `maxLanes`.
 *
 * undici sends a lane's requests in the order they were dispatched and, when a connection fails,
 * sends again those not yet answered, in the same order, so `queue` mirrors the connection.
 */
export class PipelinedLanes implements RawDispatcher {
  private readonly regions = new Map<string, Lane[]>();
  /** The lanes' dispatchers: a region's lane i uses the i-th (each holds a connection per region). */
  private readonly dispatchers: Dispatcher[] = [];
  /** Where the search for the least busy lane starts, moved on each time so that equals take turns. */
  private turn = 0;
  private inFlight = 0;
  private sweep: NodeJS.Timeout | undefined;
  private readonly finished = (lane: Lane, entry: Entry) => this.finish(lane, entry);

  constructor(private readonly options: PipelinedLanesOptions) {}

  dispatch(options: Dispatcher.DispatchOptions, handler: RawDispatchHandler): void {
    const now = performance.now();
    const lane = this.pick(String(options.origin), now);
    if (lane === undefined) {
      this.options.overflow.dispatch(options, handler as Dispatcher.DispatchHandler);
      return;
    }
    const entry = new Entry(options, handler, lane, this.finished);
    lane.queue.push(entry);
    if (lane.queue.length === 1) lane.headSince = now;
    this.inFlight++;
    // Stopped by the first check that finds nothing in flight, not as soon as nothing is: a router
    // under light load would otherwise make and clear a timer for every request.
    this.sweep ??= setInterval(() => this.rescue(), Math.max(1, this.options.stallMs / 2)).unref();
    lane.dispatcher.dispatch(options, entry as Dispatcher.DispatchHandler);
  }

  /** Stops the stall checks; the lanes' dispatchers are closed by whoever made them. */
  close(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
  }

  /** The region's least busy lane that is neither full nor stalled, a new one if all are, or none past `maxLanes`. */
  private pick(origin: string, now: number): Lane | undefined {
    let lanes = this.regions.get(origin);
    if (lanes === undefined) {
      lanes = [];
      while (lanes.length < this.options.minLanes) lanes.push(this.newLane(lanes));
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
      lanes.push((best = this.newLane(lanes)));
      bestIndex = count;
    }
    this.turn = (bestIndex + 1) % lanes.length;
    return best;
  }

  private newLane(region: Lane[]): Lane {
    const index = region.length;
    while (this.dispatchers.length <= index) this.dispatchers.push(this.options.newLane());
    return { dispatcher: this.dispatchers[index]!, region, queue: [], headSince: 0 };
  }

  private finish(lane: Lane, entry: Entry): void {
    // Answers come in order: the finished request is nearly always the head.
    const index = lane.queue[0] === entry ? 0 : lane.queue.indexOf(entry);
    if (index < 0) return;
    if (index === 0) lane.queue.shift();
    else lane.queue.splice(index, 1);
    if (index === 0) lane.headSince = performance.now();
    // Lanes opened past `minLanes` for a burst are let go once idle, last first, so that the
    // region's requests gather on fewer connections again (their pooled connections time out).
    const region = lane.region;
    while (region.length > this.options.minLanes && region[region.length - 1]!.queue.length === 0) region.pop();
    this.inFlight--;
  }

  /** Sends the requests waiting behind a stalled head again, each on a connection of its own. */
  private rescue(): void {
    if (this.inFlight === 0) return this.close();
    const now = performance.now();
    for (const lanes of this.regions.values()) {
      for (const lane of lanes) {
        if (lane.queue.length < 2 || now - lane.headSince < this.options.stallMs) continue;
        for (let i = 1; i < lane.queue.length; i++) {
          const entry = lane.queue[i]!;
          if (entry.resent) continue;
          entry.resent = true;
          this.options.overflow.dispatch(entry.options, entry.handler as Dispatcher.DispatchHandler);
        }
      }
    }
  }
}

/**
 * Makes a lane's connection send the requests written to it in one turn of the event loop with
 * one system call. undici writes each request head as it is dispatched, and on loopback or a
 * fast network each write costs the router a system call and the region a wake-up and a read;
 * requests that arrive together (the router reads many client sockets per turn) then go out
 * together, and the region reads them together. The socket is corked at the first write of a
 * turn and uncorked once the turn's I/O callbacks have run (setImmediate).
 */
export function batchWrites(socket: Socket): void {
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(flush);
    }
    return write.apply(this, args);
  } as Socket['write'];
}
