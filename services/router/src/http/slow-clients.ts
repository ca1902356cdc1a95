import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Why the router cut a slow client's connection: the process's budget was spent, or the client took nothing for too long. */
export type SlowClientCutReason = 'budget' | 'deadline';

export interface SlowClientCut {
  reason: SlowClientCutReason;
  /** Bytes of answers the router held in memory for that connection when it cut it. */
  heldBytes: number;
  /** Bytes held for every slow client of the process, that one included. */
  totalBytes: number;
}

export interface SlowClientBudgetOptions {
  /** At most this many bytes of answers are held in memory, for all slow clients of the process together. */
  maxBytes: number;
  /** A client connection that takes none of what is held for it for this long is cut. */
  writeTimeoutMs: number;
  /** Told once for each connection cut (to log and count it). */
  onCut(cut: SlowClientCut): void;
}

/** An answer with bytes held in memory because its client reads slower than the region answered. */
interface HeldAnswer {
  held: number;
  release: () => void;
}

/** A client connection with answers held for it. */
interface SlowConnection {
  socket: Socket;
  answers: Map<ServerResponse, HeldAnswer>;
  held: number;
  /** How far the connection had got when the deadline was last armed (see `progressOf`). */
  progress: number;
  timer: NodeJS.Timeout;
  /** Releases every answer when the connection closes: one queued behind another may never see a 'close' of its own. */
  closed: () => void;
}

/**
 * The memory a process spends on clients slower than their regions. A pipelined answer is read
 * from the region whatever its client's pace (RegionDispatchers.pipelined), so what the client has
 * not yet taken waits in the router: in the client socket's buffer, or in the response's own
 * while an earlier answer on the same connection is still going out. Each such answer is bounded
 * (MAX_MANIFEST_BYTES), but not how many there are: many clients that read nothing, or one that
 * pipelines many GETs and reads nothing, would hold any amount. This bounds the total and how long
 * any of it may wait:
 *
 * - when the bytes held exceed `maxBytes`, the connection of the client with the most held is cut
 *   (as many as it takes to be within the budget again): its answers are dropped, and the client
 *   sees its connection close, never an answer cut short and passed off as whole;
 * - a connection that takes no bytes for `writeTimeoutMs` while something is held for it is cut
 *   too.
 *
 * An answer is tracked from the write its socket refused (`hold`) until its client has taken the
 * backlog ('drain'), the answer has gone to the kernel whole ('finish') or the connection closed.
 */
export class SlowClientBudget {
  private readonly connections = new Map<Socket, SlowConnection>();
  private total = 0;

  constructor(private readonly options: SlowClientBudgetOptions) {}

  /** Bytes held in memory for slow clients now (as of their last write). */
  get heldBytes(): number {
    return this.total;
  }

  /**
   * Notes that `res` holds bytes its client has not taken: called after a write to it returned
   * false. May cut this client, or another, to stay within the budget.
   */
  hold(res: ServerResponse): void {
    const socket = res.req.socket;
    // Cut, or gone: what is written now is dropped with it.
    if (socket.destroyed) return;
    let connection = this.connections.get(socket);
    if (connection === undefined) {
      const closed = () => {
        for (const answer of [...(this.connections.get(socket)?.answers.keys() ?? [])]) this.release(answer);
      };
      connection = { socket, answers: new Map(), held: 0, progress: progressOf(socket), timer: this.deadline(socket), closed };
      this.connections.set(socket, connection);
      socket.once('close', closed);
    }
    let answer = connection.answers.get(res);
    if (answer === undefined) {
      const release = () => this.release(res);
      connection.answers.set(res, (answer = { held: 0, release }));
      res.once('drain', release).once('finish', release).once('close', release);
    }
    this.update(connection, res, answer);
    if (this.total > this.options.maxBytes) this.shed();
  }

  private update(connection: SlowConnection, res: ServerResponse, answer: HeldAnswer): void {
    const held = res.writableLength;
    this.total += held - answer.held;
    connection.held += held - answer.held;
    answer.held = held;
  }

  private release(res: ServerResponse): void {
    const connection = this.connections.get(res.req.socket);
    const answer = connection?.answers.get(res);
    if (connection === undefined || answer === undefined) return;
    connection.answers.delete(res);
    this.total -= answer.held;
    connection.held -= answer.held;
    res.off('drain', answer.release).off('finish', answer.release).off('close', answer.release);
    if (connection.answers.size > 0) return;
    clearTimeout(connection.timer);
    connection.socket.off('close', connection.closed);
    this.connections.delete(connection.socket);
  }

  /** Cuts the connections holding the most until the total is within the budget. */
  private shed(): void {
    // Clients may have taken some of their backlog since their last write.
    for (const connection of this.connections.values()) for (const [res, answer] of connection.answers) this.update(connection, res, answer);
    while (this.total > this.options.maxBytes) {
      let largest: SlowConnection | undefined;
      for (const connection of this.connections.values()) if (largest === undefined || connection.held > largest.held) largest = connection;
      if (largest === undefined) return;
      this.cut(largest, 'budget');
    }
  }

  private deadline(socket: Socket): NodeJS.Timeout {
    return setTimeout(() => this.checkProgress(socket), this.options.writeTimeoutMs).unref();
  }

  private checkProgress(socket: Socket): void {
    const connection = this.connections.get(socket);
    if (connection === undefined) return;
    const progress = progressOf(socket);
    if (progress > connection.progress) {
      connection.progress = progress;
      connection.timer = this.deadline(socket);
      return;
    }
    for (const [res, answer] of connection.answers) this.update(connection, res, answer);
    this.cut(connection, 'deadline');
  }

  private cut(connection: SlowConnection, reason: SlowClientCutReason): void {
    const totalBytes = this.total;
    const heldBytes = connection.held;
    const answers = [...connection.answers.keys()];
    for (const res of answers) this.release(res);
    this.options.onCut({ reason, heldBytes, totalBytes });
    // The responses first, so that whatever is still to come of their answers is dropped (the
    // proxy checks `destroyed`); then the connection, which frees what it buffered for them.
    for (const res of answers) res.destroy();
    connection.socket.destroy();
  }
}

/**
 * How many bytes the client's connection has handed to the kernel: what was written to it, less
 * what still waits in its buffer. It moves only when the client reads (once the kernel's buffers
 * are full, which is when anything waits here at all).
 */
function progressOf(socket: Socket): number {
  return socket.bytesWritten - socket.writableLength;
}
