/**
 * The span API of src/observability/tracing.ts and the SDK set-up of src/services/serviceTracing.ts, against
 * the real OpenTelemetry SDK with an in-memory exporter (no database: test/integration/observability has the
 * end-to-end run).
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  RandomIdGenerator,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { v7 as uuidv7 } from 'uuid';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import {
  rootSpanIdForTask,
  TaskRootIdGenerator,
  traceIdForTask,
} from '../../../src/observability/taskTraceContext.ts';
import { SPAN_ATTRIBUTES, SPAN_NAMES, TaskerTracing } from '../../../src/observability/tracing.ts';
import type { TracedStep, TracedTask } from '../../../src/observability/tracing.ts';
import { startServiceTracing } from '../../../src/services/serviceTracing.ts';

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

function sdk(options: { taskIds?: boolean } = {}): {
  tracing: TaskerTracing;
  exporter: InMemorySpanExporter;
} {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(options.taskIds !== false && { idGenerator: new TaskRootIdGenerator(new RandomIdGenerator()) }),
  });
  return { tracing: new TaskerTracing(provider.getTracer('test')), exporter };
}

function task(taskUuid = uuidv7()): TracedTask {
  return {
    taskUuid,
    namespace: 'math',
    template: 'diamond_pattern',
    version: '1.0.0',
    correlationId: uuidv7(),
    source: 'api',
  };
}

function step(taskUuid: string, attempt = 1): TracedStep {
  return {
    taskUuid,
    stepUuid: uuidv7(),
    stepName: 'diamond_start',
    attempt,
    maxAttempts: 3,
    correlationId: uuidv7(),
    msgId: '17',
  };
}

function named(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name);
}

function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = named(spans, name);
  expect(found, `exactly one ${name}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

function telemetry(tracing: { enabled: boolean; sample_ratio?: number }) {
  return configSchema.parse({ telemetry: { service_name: 'tasker-unit', tracing } }).telemetry;
}

afterEach(() => {
  trace.disable();
  context.disable();
});

describe('TaskerTracing', () => {
  it('the create span is the task root: derived ids, no parent, attributes, the caller linked', () => {
    const { tracing, exporter } = sdk();
    const created = task();
    const span = tracing.startTaskCreate(created, `00-${CALLER_TRACE}-${CALLER_SPAN}-01`);
    tracing.endTaskCreate(span, { enqueuedSteps: 1, state: 'steps_in_process' });

    const root = only(exporter.getFinishedSpans(), SPAN_NAMES.taskCreate);
    expect(root.spanContext().traceId).toBe(traceIdForTask(created.taskUuid));
    expect(root.spanContext().spanId).toBe(rootSpanIdForTask(created.taskUuid));
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.attributes).toMatchObject({
      [SPAN_ATTRIBUTES.taskUuid]: created.taskUuid,
      [SPAN_ATTRIBUTES.namespace]: 'math',
      [SPAN_ATTRIBUTES.template]: 'diamond_pattern',
      [SPAN_ATTRIBUTES.templateVersion]: '1.0.0',
      [SPAN_ATTRIBUTES.correlationId]: created.correlationId,
      [SPAN_ATTRIBUTES.taskSource]: 'api',
      [SPAN_ATTRIBUTES.enqueuedSteps]: 1,
      [SPAN_ATTRIBUTES.taskState]: 'steps_in_process',
    });
    expect(root.links).toHaveLength(1);
    expect(root.links[0]?.context).toMatchObject({ traceId: CALLER_TRACE, spanId: CALLER_SPAN });
    expect(root.events.map((e) => e.name)).toEqual(['tasker.steps.enqueued']);
  });

  it('a malformed traceparent is no link; a failed creation ends in error', () => {
    const { tracing, exporter } = sdk();
    const span = tracing.startTaskCreate(task(), 'garbage');
    tracing.failTaskCreate(span, new Error('duplicate identity'));
    const root = only(exporter.getFinishedSpans(), SPAN_NAMES.taskCreate);
    expect(root.links).toEqual([]);
    expect(root.status).toEqual({ code: SpanStatusCode.ERROR, message: 'duplicate identity' });
    expect(root.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('without TaskRootIdGenerator the create span hangs under the derived root: same trace id', () => {
    const { tracing, exporter } = sdk({ taskIds: false });
    const first = task();
    const second = task();
    tracing.endTaskCreate(tracing.startTaskCreate(first), { enqueuedSteps: 1, state: 'pending' });
    tracing.endTaskCreate(tracing.startTaskCreate(second), { enqueuedSteps: 1, state: 'pending' });
    const spans = named(exporter.getFinishedSpans(), SPAN_NAMES.taskCreate);
    expect(spans).toHaveLength(2);
    for (const [span, taskUuid] of [
      [spans[0], first.taskUuid],
      [spans[1], second.taskUuid],
    ] as const) {
      expect(span?.spanContext().traceId).toBe(traceIdForTask(taskUuid));
      expect(span?.parentSpanContext?.spanId).toBe(rootSpanIdForTask(taskUuid));
    }
  });

  it('claim under the task root; execute and result under the claim; outcomes recorded', async () => {
    const { tracing, exporter } = sdk();
    const taskUuid = uuidv7();
    const claimed = step(taskUuid);
    const spans = tracing.startStep(claimed, 'math', 'worker-1', 'worker_math_queue');
    const outcome = await spans.execute(() => Promise.resolve({ success: true as const, result: 9 }));
    expect(outcome).toEqual({ success: true, result: 9 });
    const stored = await spans.storeResult(true, () =>
      Promise.resolve({ outcome: 'complete', refilled: false }),
    );
    expect(stored.outcome).toBe('complete');
    spans.end(outcome, stored.outcome);

    const finished = exporter.getFinishedSpans();
    const claim = only(finished, SPAN_NAMES.stepClaim);
    const execute = only(finished, SPAN_NAMES.stepExecute);
    const result = only(finished, SPAN_NAMES.stepResult);
    expect(claim.kind).toBe(SpanKind.CONSUMER);
    expect(claim.spanContext().traceId).toBe(traceIdForTask(taskUuid));
    expect(claim.parentSpanContext).toMatchObject({ spanId: rootSpanIdForTask(taskUuid), isRemote: true });
    expect(execute.parentSpanContext?.spanId).toBe(claim.spanContext().spanId);
    expect(result.parentSpanContext?.spanId).toBe(claim.spanContext().spanId);
    const common = {
      [SPAN_ATTRIBUTES.taskUuid]: taskUuid,
      [SPAN_ATTRIBUTES.stepUuid]: claimed.stepUuid,
      [SPAN_ATTRIBUTES.correlationId]: claimed.correlationId,
      [SPAN_ATTRIBUTES.namespace]: 'math',
      [SPAN_ATTRIBUTES.stepName]: 'diamond_start',
      [SPAN_ATTRIBUTES.attempt]: 1,
    };
    expect(claim.attributes).toMatchObject({
      ...common,
      [SPAN_ATTRIBUTES.workerId]: 'worker-1',
      [SPAN_ATTRIBUTES.messagingDestination]: 'worker_math_queue',
      [SPAN_ATTRIBUTES.messageId]: '17',
      [SPAN_ATTRIBUTES.outcome]: 'success',
      [SPAN_ATTRIBUTES.resultOutcome]: 'complete',
    });
    expect(execute.attributes).toMatchObject({ ...common, [SPAN_ATTRIBUTES.outcome]: 'success' });
    expect(result.attributes).toMatchObject({
      ...common,
      [SPAN_ATTRIBUTES.resultInline]: true,
      [SPAN_ATTRIBUTES.resultOutcome]: 'complete',
    });
    for (const span of [claim, execute, result]) expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a failed attempt: execute and claim in error, with the failure type and message', async () => {
    const { tracing, exporter } = sdk();
    const spans = tracing.startStep(step(uuidv7(), 2), 'math', 'worker-1', 'worker_math_queue');
    const failure = {
      success: false as const,
      failure: { message: 'never', error_type: 'permanent_error', retryable: false, code: 'INVALID' },
    };
    await spans.execute(() => Promise.resolve(failure));
    spans.end(failure, 'error');
    const finished = exporter.getFinishedSpans();
    for (const span of [only(finished, SPAN_NAMES.stepExecute), only(finished, SPAN_NAMES.stepClaim)]) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'never' });
      expect(span.attributes).toMatchObject({
        [SPAN_ATTRIBUTES.outcome]: 'permanent_error',
        [SPAN_ATTRIBUTES.errorType]: 'permanent_error',
        [SPAN_ATTRIBUTES.errorCode]: 'INVALID',
        [SPAN_ATTRIBUTES.attempt]: 2,
      });
      expect(span.events.find((e) => e.name === 'exception')?.attributes).toEqual({
        'exception.type': 'permanent_error',
        'exception.message': 'never',
      });
    }
  });

  it('an unstored result is an error on the result and claim spans', async () => {
    const { tracing, exporter } = sdk();
    const spans = tracing.startStep(step(uuidv7()), 'math', 'worker-1', 'worker_math_queue');
    await spans.storeResult(false, () => Promise.resolve({ outcome: 'unstored' }));
    spans.end({ success: true }, 'unstored');
    const finished = exporter.getFinishedSpans();
    expect(only(finished, SPAN_NAMES.stepResult).status.code).toBe(SpanStatusCode.ERROR);
    expect(only(finished, SPAN_NAMES.stepClaim).status.code).toBe(SpanStatusCode.ERROR);
    expect(only(finished, SPAN_NAMES.stepResult).attributes[SPAN_ATTRIBUTES.resultInline]).toBe(false);
  });

  it('the execute span is active while the handler runs (with a context manager)', async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const { tracing, exporter } = sdk();
    const spans = tracing.startStep(step(uuidv7()), 'math', 'worker-1', 'worker_math_queue');
    let active: string | undefined;
    await spans.execute(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      active = trace.getActiveSpan()?.spanContext().spanId;
      return { success: true as const };
    });
    expect(active).toBe(only(exporter.getFinishedSpans(), SPAN_NAMES.stepExecute).spanContext().spanId);
  });
});

describe('startServiceTracing', () => {
  it('tracing off: no SDK at all', () => {
    const service = startServiceTracing({
      telemetry: telemetry({ enabled: false }),
      role: 'worker',
      logger: silentLogger,
      exporter: new InMemorySpanExporter(),
    });
    expect(service).toBeUndefined();
  });

  it('tracing on: task ids, resource, and the globals registered until shutdown', async () => {
    const exporter = new InMemorySpanExporter();
    const service = startServiceTracing({
      telemetry: telemetry({ enabled: true }),
      role: 'orchestration',
      logger: silentLogger,
      exporter,
    });
    if (service === undefined) throw new Error('tracing is enabled');
    const created = task();
    service.tracing.endTaskCreate(service.tracing.startTaskCreate(created), { enqueuedSteps: 1, state: 'x' });
    trace.getTracer('handler').startSpan('handler.work').end();

    const finished = exporter.getFinishedSpans();
    const root = only(finished, SPAN_NAMES.taskCreate);
    expect(root.spanContext().spanId).toBe(rootSpanIdForTask(created.taskUuid));
    expect(root.resource.attributes).toMatchObject({
      'service.name': 'tasker-unit',
      'tasker.role': 'orchestration',
    });
    expect(named(finished, 'handler.work')).toHaveLength(1);

    await service.shutdown();
    await service.shutdown();
    expect(trace.getTracer('handler').startSpan('after').isRecording()).toBe(false);
  });

  it('a process-wide provider registered first keeps the globals', async () => {
    const own = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(own)] }),
    );
    const exporter = new InMemorySpanExporter();
    const service = startServiceTracing({
      telemetry: telemetry({ enabled: true }),
      role: 'worker',
      logger: silentLogger,
      exporter,
    });
    trace.getTracer('app').startSpan('app.work').end();
    await service?.shutdown();
    expect(named(own.getFinishedSpans(), 'app.work')).toHaveLength(1);
    expect(exporter.getFinishedSpans()).toEqual([]);
    // Our shutdown did not take the application's provider down.
    expect(trace.getTracer('app').startSpan('still').isRecording()).toBe(true);
  });

  it('sample_ratio 0: neither the root nor a remote-parented step span is recorded', async () => {
    const exporter = new InMemorySpanExporter();
    const service = startServiceTracing({
      telemetry: telemetry({ enabled: true, sample_ratio: 0 }),
      role: 'worker',
      logger: silentLogger,
      exporter,
    });
    if (service === undefined) throw new Error('tracing is enabled');
    const taskUuid = uuidv7();
    const root = service.tracing.startTaskCreate(task(taskUuid));
    // Unsampled, but with the task's ids: the decision is the trace id's.
    expect(root.isRecording()).toBe(false);
    expect(root.spanContext().traceId).toBe(traceIdForTask(taskUuid));
    service.tracing.endTaskCreate(root, { enqueuedSteps: 1, state: 'x' });
    const spans = service.tracing.startStep(step(taskUuid), 'math', 'w', 'worker_math_queue');
    expect(spans.claim.isRecording()).toBe(false);
    await spans.execute(() => Promise.resolve({ success: true as const }));
    spans.end({ success: true }, 'complete');
    expect(exporter.getFinishedSpans()).toEqual([]);
    await service.shutdown();
  });
});
