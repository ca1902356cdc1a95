import { EventEmitter } from 'node:events';
import { ROOT_CONTEXT, createContextKey, trace } from '@opentelemetry/api';
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

  it('is off again after a listener bound to a finished request runs in its context', () => {
    // A traced request: its response is bound to the request's context, and a listener (the
    // request metrics) waits for 'close', which Node emits after the response's span has ended.
    const { manager, tracer } = setUp();
    const span = tracer.startSpan('request');
    const traced = trace.setSpan(ROOT_CONTEXT, span);
    const response = manager.bind(traced, new EventEmitter());
    let contextInListener: unknown;
    response.once('close', () => void (contextInListener = manager.active()));
    span.end();
    expect(manager.propagating).toBe(false);

    response.emit('close');

    expect(contextInListener).toBe(traced);
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

  it('binds the emitters of an untraced request while a traced one is open', () => {
    const { manager, tracer } = setUp();
    const span = tracer.startSpan('push');
    const untraced = ROOT_CONTEXT.setValue(createContextKey('untraced'), true);
    expect(manager.bind(untraced, new EventEmitter()).on).not.toBe(EventEmitter.prototype.on);
    span.end();
  });
});
