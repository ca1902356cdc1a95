// The span export thread of OtlpThreadExporter (otlp-thread-exporter.ts): POSTs each batch of
// encoded spans it is given to the collector and answers `{ id, error }` once the collector has
// answered. JavaScript rather than TypeScript: a worker thread does not get the process's loader.
import http from 'node:http';
import https from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';

const { url, headers, timeoutMs } = workerData;
const collector = new URL(url);
const transport = collector.protocol === 'https:' ? https : http;
const agent = new transport.Agent({ keepAlive: true });

parentPort.on('message', ({ id, body }) => {
  let answered = false;
  const answer = (error) => {
    if (answered) return;
    answered = true;
    parentPort.postMessage({ id, error });
  };
  const request = transport.request(collector, { method: 'POST', agent, timeout: timeoutMs, headers: { ...headers, 'Content-Type': 'application/json', 'Content-Length': body.byteLength } }, (response) => {
    response.resume();
    response.on('end', () => answer(response.statusCode >= 200 && response.statusCode < 300 ? undefined : `the collector answered ${response.statusCode} ${response.statusMessage ?? ''}`.trim()));
    response.on('error', (err) => answer(err.message));
  });
  request.on('timeout', () => request.destroy(new Error(`the collector did not answer within ${timeoutMs} ms`)));
  request.on('error', (err) => answer(err.message));
  request.end(body);
});
