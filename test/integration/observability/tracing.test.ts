/**
 * OpenTelemetry spans of real runs: an orchestration service and a worker service in this process, over real
 * HTTP and PostgreSQL, each exporting into an InMemorySpanExporter. Tasks come in through POST /v1/tasks and
 * through orchestration_task_requests; the spans of each task must form one trace whose id is derived from
 * the task alone, with the step spans parented across the queue. With tracing off, nothing is produced.
 */
import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import handlers from '../../../examples/handlers/index.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import type { LoadedConfig } from '../../../src/config/loadConfig.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { rootSpanIdForTask, traceIdForTask } from '../../../src/observability/taskTraceContext.ts';
import { SPAN_ATTRIBUTES, SPAN_NAMES } from '../../../src/observability/tracing.ts';
import { startOrchestrationService } from '../../../src/services/orchestrationService.ts';
import type { OrchestrationService } from '../../../src/services/orchestrationService.ts';
import { startWorkerService } from '../../../src/services/workerService.ts';
import type { WorkerService } from '../../../src/services/workerService.ts';
import type { StepContext, StepHandlerDefinition } from '../../../src/worker/handlerApi.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';
import { stepsByName } from '../../helpers/engine/inspect.ts';
import { waitFor } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;
const DIAMOND_STEPS = ['diamond_branch_b', 'diamond_branch_c', 'diamond_end', 'diamond_start'];

/** The example handlers; Math.SquareInput starts a span of its own through the global API, as user code would. */
const tracedHandlers: StepHandlerDefinition[] = handlers.map((handler) =>
  handler.name !== 'Math.SquareInput'
    ? handler
    : {
        name: handler.name,
        run: (ctx: StepContext) =>
          trace.getTracer('test-handler').startActiveSpan('handler.square', async (span) => {
            try {
              return await handler.run(ctx);
            } finally {
              span.end();
            }
          }),
      },
);

interface Services {
  orchestration: OrchestrationService;
  worker: WorkerService;
  orchestrationSpans: InMemorySpanExporter;
  workerSpans: InMemorySpanExporter;
  url: string;
  stop(): Promise<void>;
}

async function startServices(dbUrl: string, tracing: boolean): Promise<Services> {
  const loaded: LoadedConfig = loadConfig({ env: { TASKER_ENV: 'test', DATABASE_URL: dbUrl } });
  loaded.config.telemetry.tracing.enabled = tracing;
  loaded.config.telemetry.metrics.enabled = false;
  const orchestrationSpans = new InMemorySpanExporter();
  const workerSpans = new InMemorySpanExporter();
  const orchestration = await startOrchestrationService({
    loaded,
    logger: silentLogger,
    bindAddress: '127.0.0.1:0',
    grpcBindAddress: '127.0.0.1:0',
    spanExporter: orchestrationSpans,
  });
  const worker = await startWorkerService({
    loaded,
    logger: silentLogger,
    handlers: tracedHandlers,
    templates: exampleTemplates(),
    bindAddress: '127.0.0.1:0',
    grpcBindAddress: '127.0.0.1:0',
    spanExporter: workerSpans,
  });
  return {
    orchestration,
    worker,
    orchestrationSpans,
    workerSpans,
    url: orchestration.url as string,
    stop: async () => {
      await worker.stop();
      await orchestration.stop();
    },
  };
}

async function postTask(
  url: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<string> {
  const response = await fetch(`${url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { task_uuid: string }).task_uuid;
}

async function waitFinished(url: string, taskUuid: string): Promise<string> {
  return waitFor(
    `task ${taskUuid} to finish`,
    async () => {
      const view = (await (await fetch(`${url}/v1/tasks/${taskUuid}?wait=5`)).json()) as { status: string };
      return ['complete', 'error', 'cancelled'].includes(view.status) ? view.status : undefined;
    },
    30_000,
  );
}

function allSpans(services: Services): ReadableSpan[] {
  return [...services.orchestrationSpans.getFinishedSpans(), ...services.workerSpans.getFinishedSpans()];
}

function spansOfTask(services: Services, taskUuid: string): ReadableSpan[] {
  const traceId = traceIdForTask(taskUuid);
  return allSpans(services).filter((span) => span.spanContext().traceId === traceId);
}

function named(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name);
}

function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = named(spans, name);
  expect(found, `exactly one ${name}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

const stepNameOf = (span: ReadableSpan): string => String(span.attributes[SPAN_ATTRIBUTES.stepName]);

/**
 * The claim span ends after the result's commit, which may also finish the task: the task can read as
 * finished a moment before the last claim spans are exported.
 */
async function waitForClaims(services: Services, taskUuid: string, count: number): Promise<ReadableSpan[]> {
  return waitFor(
    `${count} claim spans of task ${taskUuid}`,
    () => {
      const spans = spansOfTask(services, taskUuid);
      return named(spans, SPAN_NAMES.stepClaim).length >= count ? spans : undefined;
    },
    10_000,
    () =>
      spansOfTask(services, taskUuid)
        .map((s) => `${s.name} ${stepNameOf(s)}`)
        .join(', '),
  );
}

describe('tracing enabled', () => {
  const testDb = useTestDatabase();
  let services: Services;

  beforeAll(async () => {
    services = await startServices(testDb().url, true);
  });
  afterAll(async () => {
    await services?.stop();
  });

  it('a diamond task from POST /v1/tasks: one trace, id from the task, claim/execute/result per step', async () => {
    const taskUuid = await postTask(
      services.url,
      { namespace: 'math', name: 'diamond_pattern', version: '1.0.0', context: { n: 3 } },
      { traceparent: TRACEPARENT },
    );
    expect(await waitFinished(services.url, taskUuid)).toBe('complete');
    const spans = await waitForClaims(services, taskUuid, 4);
    const traceId = traceIdForTask(taskUuid);
    const rootSpanId = rootSpanIdForTask(taskUuid);
    const steps = await stepsByName(testDb().db, taskUuid);

    // The root: made by the orchestration service, with the derived ids, linked to the caller's span.
    const root = only(spans, SPAN_NAMES.taskCreate);
    expect(services.orchestrationSpans.getFinishedSpans()).toContain(root);
    expect(root.spanContext()).toMatchObject({ traceId, spanId: rootSpanId });
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.resource.attributes).toMatchObject({
      'service.name': 'tasker',
      'tasker.role': 'orchestration',
    });
    expect(root.attributes).toMatchObject({
      [SPAN_ATTRIBUTES.taskUuid]: taskUuid,
      [SPAN_ATTRIBUTES.namespace]: 'math',
      [SPAN_ATTRIBUTES.template]: 'diamond_pattern',
      [SPAN_ATTRIBUTES.templateVersion]: '1.0.0',
      [SPAN_ATTRIBUTES.taskSource]: 'api',
      [SPAN_ATTRIBUTES.enqueuedSteps]: 1,
    });
    expect(root.links.map((link) => link.context)).toEqual([
      expect.objectContaining({ traceId: CALLER_TRACE, spanId: CALLER_SPAN }),
    ]);
    // No span of this task escaped into the caller's trace.
    expect(allSpans(services).filter((s) => s.spanContext().traceId === CALLER_TRACE)).toEqual([]);

    // One claim per step, made by the worker, each a child of the task root across the queue.
    const claims = named(spans, SPAN_NAMES.stepClaim);
    expect(claims.map(stepNameOf).sort()).toEqual(DIAMOND_STEPS);
    for (const claim of claims) {
      const name = stepNameOf(claim);
      expect(services.workerSpans.getFinishedSpans()).toContain(claim);
      expect(claim.kind).toBe(SpanKind.CONSUMER);
      expect(claim.parentSpanContext).toMatchObject({ traceId, spanId: rootSpanId });
      expect(claim.resource.attributes['tasker.role']).toBe('worker');
      expect(claim.attributes).toMatchObject({
        [SPAN_ATTRIBUTES.taskUuid]: taskUuid,
        [SPAN_ATTRIBUTES.stepUuid]: steps[name]?.workflow_step_uuid,
        [SPAN_ATTRIBUTES.namespace]: 'math',
        [SPAN_ATTRIBUTES.stepName]: name,
        [SPAN_ATTRIBUTES.attempt]: 1,
        [SPAN_ATTRIBUTES.outcome]: 'success',
        [SPAN_ATTRIBUTES.resultOutcome]: 'complete',
        [SPAN_ATTRIBUTES.workerId]: services.worker.worker.id,
        [SPAN_ATTRIBUTES.messagingDestination]: 'worker_math_queue',
      });
      expect(claim.status.code).toBe(SpanStatusCode.UNSET);

      // Its execute and result spans hang under it.
      const children = spans.filter((s) => s.parentSpanContext?.spanId === claim.spanContext().spanId);
      const execute = only(children, SPAN_NAMES.stepExecute);
      const result = only(children, SPAN_NAMES.stepResult);
      expect(execute.attributes).toMatchObject({
        [SPAN_ATTRIBUTES.stepName]: name,
        [SPAN_ATTRIBUTES.attempt]: 1,
        [SPAN_ATTRIBUTES.outcome]: 'success',
      });
      expect(result.attributes).toMatchObject({
        [SPAN_ATTRIBUTES.stepName]: name,
        [SPAN_ATTRIBUTES.resultInline]: true,
        [SPAN_ATTRIBUTES.resultOutcome]: 'complete',
      });
    }
    expect(named(spans, SPAN_NAMES.stepExecute)).toHaveLength(4);
    expect(named(spans, SPAN_NAMES.stepResult)).toHaveLength(4);

    // The handler's own span (global API) nests under its step's execute span.
    const startExecute = named(spans, SPAN_NAMES.stepExecute).find((s) => stepNameOf(s) === 'diamond_start');
    const handlerSpan = only(spans, 'handler.square');
    expect(handlerSpan.parentSpanContext?.spanId).toBe(startExecute?.spanContext().spanId);

    // Nothing else is in the trace: 1 root + 4 x (claim, execute, result) + the handler's span.
    expect(spans).toHaveLength(1 + 4 * 3 + 1);
  });

  it('a failing step: its execute and claim spans are errors with the failure', async () => {
    const taskUuid = await postTask(services.url, {
      namespace: 'resilience',
      name: 'permanent_error',
      version: '1.0.0',
    });
    expect(await waitFinished(services.url, taskUuid)).toBe('error');
    const spans = await waitForClaims(services, taskUuid, 1);
    expect(only(spans, SPAN_NAMES.taskCreate).links).toEqual([]);
    const claim = only(spans, SPAN_NAMES.stepClaim);
    const execute = only(spans, SPAN_NAMES.stepExecute);
    expect(execute.parentSpanContext?.spanId).toBe(claim.spanContext().spanId);
    for (const span of [execute, claim]) {
      expect(span.status).toEqual({
        code: SpanStatusCode.ERROR,
        message: 'the request is invalid and will never succeed',
      });
      expect(span.attributes).toMatchObject({
        [SPAN_ATTRIBUTES.stepName]: 'rejecting_step',
        [SPAN_ATTRIBUTES.outcome]: 'permanent_error',
        [SPAN_ATTRIBUTES.errorType]: 'permanent_error',
        [SPAN_ATTRIBUTES.errorCode]: 'INVALID_REQUEST',
      });
    }
    expect(execute.events.map((e) => e.name)).toContain('exception');
    expect(only(spans, SPAN_NAMES.stepResult).attributes[SPAN_ATTRIBUTES.resultOutcome]).toBe('error');
  });

  it('retries stay in the task trace: one claim per attempt, failed attempts in error', async () => {
    const taskUuid = await postTask(services.url, {
      namespace: 'resilience',
      name: 'retry_then_succeed',
      version: '1.0.0',
    });
    expect(await waitFinished(services.url, taskUuid)).toBe('complete');
    const spans = await waitForClaims(services, taskUuid, 4);
    const flaky = named(spans, SPAN_NAMES.stepExecute)
      .filter((s) => stepNameOf(s) === 'flaky_step')
      .sort(
        (a, b) =>
          Number(a.attributes[SPAN_ATTRIBUTES.attempt]) - Number(b.attributes[SPAN_ATTRIBUTES.attempt]),
      );
    expect(
      flaky.map((s) => [
        s.attributes[SPAN_ATTRIBUTES.attempt],
        s.attributes[SPAN_ATTRIBUTES.outcome],
        s.status.code,
      ]),
    ).toEqual([
      [1, 'retryable_error', SpanStatusCode.ERROR],
      [2, 'retryable_error', SpanStatusCode.ERROR],
      [3, 'success', SpanStatusCode.UNSET],
    ]);
    const claims = named(spans, SPAN_NAMES.stepClaim);
    expect(claims.map((c) => c.attributes[SPAN_ATTRIBUTES.resultOutcome]).sort()).toEqual([
      'complete',
      'complete',
      'retry',
      'retry',
    ]);
    for (const claim of claims) expect(claim.parentSpanContext?.spanId).toBe(rootSpanIdForTask(taskUuid));
  });

  it('a task request from the queue: root span of source queue, linked to the message traceparent', async () => {
    const correlationId = randomUUID();
    await testDb().db.query(
      `SELECT tasker.pgmq_send_with_notify('orchestration_task_requests', $1::jsonb, 0)`,
      [
        JSON.stringify({
          request_id: 'traced-request',
          traceparent: TRACEPARENT,
          task_request: {
            namespace: 'math',
            name: 'diamond_pattern',
            version: '1.0.0',
            context: { n: 2 },
            correlation_id: correlationId,
          },
        }),
      ],
    );
    const taskUuid = await waitFor(
      'the requested task',
      async () => {
        const { rows } = await testDb().db.query<{ task_uuid: string }>(
          'SELECT task_uuid FROM tasker.tasks WHERE correlation_id = $1',
          [correlationId],
        );
        return rows[0]?.task_uuid;
      },
      10_000,
    );
    expect(await waitFinished(services.url, taskUuid)).toBe('complete');
    const spans = await waitForClaims(services, taskUuid, 4);
    const root = only(spans, SPAN_NAMES.taskCreate);
    expect(root.spanContext().spanId).toBe(rootSpanIdForTask(taskUuid));
    expect(root.kind).toBe(SpanKind.CONSUMER);
    expect(root.attributes).toMatchObject({
      [SPAN_ATTRIBUTES.taskSource]: 'queue',
      [SPAN_ATTRIBUTES.correlationId]: correlationId,
    });
    expect(root.links[0]?.context).toMatchObject({ traceId: CALLER_TRACE, spanId: CALLER_SPAN });
    for (const claim of named(spans, SPAN_NAMES.stepClaim)) {
      expect(claim.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
      expect(claim.attributes[SPAN_ATTRIBUTES.correlationId]).toBe(correlationId);
    }
  });
});

describe('tracing disabled', () => {
  const testDb = useTestDatabase();
  let services: Services;
  /** Catches any span made through the global API while tracing is off. */
  const globalSpans = new InMemorySpanExporter();

  beforeAll(async () => {
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(globalSpans)] }),
    );
    services = await startServices(testDb().url, false);
  });
  afterAll(async () => {
    await services?.stop();
    trace.disable();
  });

  it('a task runs to the end and no tasker span is produced anywhere', async () => {
    const taskUuid = await postTask(
      services.url,
      { namespace: 'math', name: 'diamond_pattern', version: '1.0.0', context: { n: 3 } },
      { traceparent: TRACEPARENT },
    );
    expect(await waitFinished(services.url, taskUuid)).toBe('complete');
    const steps = await stepsByName(testDb().db, taskUuid);
    expect(Object.values(steps).map((s) => s.current_state)).toEqual([
      'complete',
      'complete',
      'complete',
      'complete',
    ]);
    expect(allSpans(services)).toEqual([]);
    // Only the test handler's own span reached the global provider: tasker made none.
    expect(globalSpans.getFinishedSpans().map((s) => s.name)).toEqual(['handler.square']);
  });
});
