import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReplicationOutcomeSchema, type RegionRecord, type ReplicationOutcome } from '@meridian/proto';

export interface RecordedReport extends ReplicationOutcome {
  changeId: string;
  region: string;
  /** The report request's `traceparent` header, if it had one. */
  traceparent?: string;
}

/**
 * The two endpoints of the control plane's admin API the worker uses, on a real HTTP server on
 * loopback: `GET /api/v1/regions` answers `regions` (change it to change what the worker sees),
 * `POST /api/v1/replication/:changeId/:region` records the report. Test support only.
 */
export class ControlPlaneStub {
  readonly reports: RecordedReport[] = [];
  private readonly waiters: Array<{ key: string; resolve: (report: RecordedReport) => void }> = [];
  private refusals = 0;
  /** What `/readyz` answers: a real control plane answers 503 while its Postgres or Redis is away. */
  ready = true;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    public regions: RegionRecord[],
  ) {}

  static async start(regions: RegionRecord[]): Promise<ControlPlaneStub> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const stub = new ControlPlaneStub(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, regions);
    server.on('request', (request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        const reply = (status: number, json?: unknown) => {
          response.writeHead(status, json === undefined ? {} : { 'content-type': 'application/json' });
          response.end(json === undefined ? undefined : JSON.stringify(json));
        };
        const report = /^\/api\/v1\/replication\/([^/]+)\/([^/]+)$/.exec(request.url ?? '');
        if (request.method === 'GET' && request.url === '/api/v1/regions') return reply(200, { regions: stub.regions });
        if (request.method === 'GET' && request.url === '/readyz') return stub.ready ? reply(200, { status: 'ready' }) : reply(503, { status: 'unavailable', failing: { postgres: 'connection refused (test)' } });
        if (request.method !== 'POST' || !report) return reply(404, { error: 'not found' });
        if (stub.refusals > 0) {
          stub.refusals--;
          return reply(503, { error: 'refused (test)' });
        }
        const outcome = ReplicationOutcomeSchema.safeParse(JSON.parse(body));
        if (!outcome.success) return reply(400, { error: outcome.error.message });
        const traceparent = request.headers.traceparent;
        stub.record({ changeId: decodeURIComponent(report[1]!), region: decodeURIComponent(report[2]!), ...outcome.data, ...(typeof traceparent === 'string' ? { traceparent } : {}) });
        reply(204);
      });
    });
    return stub;
  }

  /** The next `count` reports are answered 503, as by a control plane that is away. */
  refuseReports(count: number): void {
    this.refusals = count;
  }

  /** The first report for (changeId, region), now or when it comes. */
  report(changeId: string, region: string): Promise<RecordedReport> {
    const key = `${changeId}/${region}`;
    const made = this.reports.find((r) => `${r.changeId}/${r.region}` === key);
    if (made) return Promise.resolve(made);
    return new Promise((resolve) => this.waiters.push({ key, resolve }));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private record(report: RecordedReport): void {
    this.reports.push(report);
    const key = `${report.changeId}/${report.region}`;
    for (const waiter of this.waiters.filter((w) => w.key === key)) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(report);
    }
  }
}
