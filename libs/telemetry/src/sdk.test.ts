import { EventEmitter } from 'node:events';
import { ROOT_CONTEXT, TraceFlags, createContextKey, trace } from '@opentelemetry/api';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { WhileSpansOpenContextManager } from './sdk.js';

/**
 * The context manager that keeps AsyncLocalStorage (and the hook it puts on every promise) off
 * while no recorded span is open: README, "Traces".
 */
describe('WhileSpansOpenContextManager', () => {
  const managers: WhileSpansOpenContextManager[] = [];
  afterEach(() => void managers.splice(0).forEach((manager) => manager.disable()));

  function setUp() {
    const manager = new WhileSpansOpenContextManager().enable();
    managers.push(manager);
    const tracer = new TracerProvider({ spanProcessors: [manager.spanTracker] }).getTracer('test');
    return { manager, tracer };
  }

  it('carries a span\'s context across an await while the span is open', async () => {
    const { manager, tracer } = setUp();
    const span = tracer.startSpan('request');
    const traced = trace.setSpan(ROOT_CONTEXT, span);
    const seen = await manager.with(traced, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return manager.active();
    });
    expect(seen).toBe(traced);
    span.end();
    expect(manager.propagating).toBe(false);
  });

  it('is off again after a callback bound to a finished span runs in its context', () => {
    // A callback bound to a traced request's context (a query's, say) called once the request's
    // span has ended.
    const { manager, tracer } = setUp();
    const span = tracer.startSpan('request');
    const traced = trace.setSpan(ROOT_CONTEXT, span);
    let contextInCallback: unknown;
    const callback = manager.bind(traced, () => void (contextInCallback = manager.active()));
    span.end();
    expect(manager.propagating).toBe(false);

    callback();

    expect(contextInCallback).toBe(traced);
    // Left on, every request after this one would pay the hook until the next traced one ended.
    expect(manager.propagating).toBe(false);
  });

  it('leaves the emitters of an untraced request as they are while no span is open', () => {
    const { manager } = setUp();
    // What the HTTP instrumentation binds an untraced request to: a context that names no span.
    const untraced = ROOT_CONTEXT.setValue(createContextKey('untraced'), true);
    const request = new EventEmitter();
    expect(manager.bind(untraced, request).on).toBe(EventEmitter.prototype.on);
  });

  it('leaves the emitters of a traced request as they are', () => {
    // The HTTP instrumentation binds a traced request's and response's emitters to its span,
    // which patched their listener methods and wrapped every listener, at each request.
    const { manager, tracer } = setUp();
    const span = tracer.startSpan('push');
    const traced = trace.setSpan(ROOT_CONTEXT, span);
    const request = new EventEmitter();
    expect(manager.bind(traced, request).on).toBe(EventEmitter.prototype.on);
    span.end();
  });

  it('stays off for a span that is not recorded: an unsampled job\'s, or the one an outgoing request gets outside any trace', async () => {
    const { manager } = setUp();
    const unsampled = trace.setSpanContext(ROOT_CONTEXT, { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.NONE, isRemote: true });
    let propagatingWithin: boolean | undefined;
    await manager.with(unsampled, async () => {
      propagatingWithin = manager.propagating;
      await new Promise((resolve) => setImmediate(resolve));
    });
    expect(propagatingWithin).toBe(false);
  });
});
