import cluster from 'node:cluster';
import net from 'node:net';
import type { WorkerListening, WorkerStartFailed } from './supervisor.js';

/**
 * In a worker: tells the supervisor that it listens at `url` (the supervisor's `ready` waits for
 * every worker's), and stops it with `stop` when the supervisor is gone (killed, crashed), so a
 * worker never lives on as an orphan holding the port. Outside a worker it does nothing.
 */
export function reportListening(url: string, stop: () => void): void {
  if (!cluster.isWorker) return;
  process.once('disconnect', stop);
  process.send?.({ type: 'listening', url } satisfies WorkerListening);
}

/**
 * In a worker still connected to its supervisor: hands the report of a failed start to the
 * supervisor, which prints the first one (one line for the operator, however many workers met
 * the same mistake), and exits with status 1 once it is sent. Returns false anywhere else: the
 * caller prints the report itself.
 */
export function reportStartFailure(report: string): boolean {
  if (!cluster.isWorker || !process.connected) return false;
  process.send!({ type: 'start-failed', report } satisfies WorkerStartFailed, undefined, {}, () => process.exit(1));
  return true;
}

/**
 * Binds host:port once and lets go, so that an address in use or not of this machine is found
 * before forking (the workers' binds go through the primary, and would each fail alike). Rejects
 * with the bind's own error (EADDRINUSE, EADDRNOTAVAIL, ...), for the service to put in words.
 */
export async function checkListenAddress(host: string, port: number): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}
