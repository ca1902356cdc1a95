import { Worker } from 'node:worker_threads';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

/** What the export thread answers for each batch: `error` says why the collector did not take it. */
interface BatchPosted {
  id: number;
  error?: string;
}

/** How long the collector may take to answer one batch before the batch counts as failed. */
const POST_TIMEOUT_MS = 10_000;

/**
 * Exports spans over OTLP/HTTP (JSON) as OpenTelemetry's OTLPTraceExporter does, but POSTs them
 * from a thread of its own. A process's HTTP server and an HTTP client in the same thread run the
 * same Node code (OutgoingMessage, the parser's callbacks, sockets' streams and timers), and V8
 * compiles that code for the shapes it has seen: the first export of a gateway that had served
 * only requests made it compile for client requests and responses too, and every manifest GET
 * after it cost 4 to 11 % more CPU, for the rest of the process's life. Here the spans are encoded
 * in the exporting thread (they are objects of its SDK) and only the bytes cross to the export
 * thread, whose HTTP client shares nothing with the server.
 *
 * One try per batch: a batch the collector refuses or does not answer is reported failed (the
 * BatchSpanProcessor logs it) and dropped.
 */
export class OtlpThreadExporter implements SpanExporter {
  private readonly thread: Worker;
  private readonly waiting = new Map<number, (result: ExportResult) => void>();
  private nextId = 0;

  /**
   * `url`: the collector's traces endpoint, e.g. http://collector:4318/v1/traces; `headers`: sent
   * with every export (a collector's credentials, say), as OTLPTraceExporter sends those of
   * OTEL_EXPORTER_OTLP_HEADERS.
   */
  constructor(url: string, options: { headers?: Record<string, string> } = {}) {
    // Plain JavaScript: a worker thread does not get the TypeScript loader the process runs under.
    this.thread = new Worker(new URL('./otlp-post.worker.mjs', import.meta.url), { workerData: { url, headers: options.headers ?? {}, timeoutMs: POST_TIMEOUT_MS } });
    // Idle between exports; it must not keep a stopping process alive.
    this.thread.unref();
    this.thread.on('message', ({ id, error }: BatchPosted) => this.settle(id, error === undefined ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: new Error(error) }));
    this.thread.on('error', (err) => this.settleAll(err));
    this.thread.on('exit', () => this.settleAll(new Error('the span export thread stopped')));
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const body = JsonTraceSerializer.serializeRequest(spans);
    if (!body) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('the spans could not be encoded') });
      return;
    }
    const id = this.nextId++;
    this.waiting.set(id, resultCallback);
    this.thread.postMessage({ id, body });
  }

  /** The BatchSpanProcessor has flushed (and waited for) every batch before it calls this. */
  async shutdown(): Promise<void> {
    await this.thread.terminate();
  }

  private settle(id: number, result: ExportResult): void {
    const resultCallback = this.waiting.get(id);
    this.waiting.delete(id);
    resultCallback?.(result);
  }

  private settleAll(error: Error): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, { code: ExportResultCode.FAILED, error });
  }
}
