import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Link, Span, SpanOptions, Tracer } from '@opentelemetry/api';
import { stepFailureOutcome } from './metrics.ts';
import {
  parseTraceparent,
  rootSpanIdForTask,
  taskParentContext,
  traceIdForTask,
  withTaskRootIds,
} from './taskTraceContext.ts';

/**
 * OpenTelemetry spans of a task and its steps, written against `@opentelemetry/api` only: the SDK, exporter
 * and sampler are set up by the services (src/services/serviceTracing.ts). Engine code holds a
 * `TaskerTracing` or undefined; undefined (tracing off, the default) costs one comparison per step.
 *
 * One trace per task, its id derived from the task UUID (taskTraceContext.ts):
 *
 *   tasker.task.create            root; task_uuid, namespace, template, version, correlation_id, source
 *   └─ tasker.step.claim          per claimed attempt, from claim to lease released (consumer span)
 *      ├─ tasker.step.execute     the handler; error status when it failed; active while the handler runs
 *      └─ tasker.step.result      storing the result, and in the same commit enqueueing the steps it made
 *                                 ready (inline) or signalling orchestration
 *
 * Step enqueueing happens inside SQL (tasker.create_tasks, tasker.complete_many_and_claim), so it is
 * recorded on the spans around those calls: the create span's `tasker.enqueued_steps` and the result span.
 * Attributes are span attributes, so task and step ids are fine there (unlike metric labels).
 */

export const TRACER_NAME = 'tasker';

export const SPAN_NAMES = {
  taskCreate: 'tasker.task.create',
  stepClaim: 'tasker.step.claim',
  stepExecute: 'tasker.step.execute',
  stepResult: 'tasker.step.result',
} as const;

export const SPAN_ATTRIBUTES = {
  taskUuid: 'tasker.task_uuid',
  stepUuid: 'tasker.step_uuid',
  correlationId: 'tasker.correlation_id',
  namespace: 'tasker.namespace',
  template: 'tasker.template',
  templateVersion: 'tasker.template_version',
  taskSource: 'tasker.task_source',
  enqueuedSteps: 'tasker.enqueued_steps',
  taskState: 'tasker.task_state',
  stepName: 'tasker.step_name',
  attempt: 'tasker.attempt',
  maxAttempts: 'tasker.max_attempts',
  workerId: 'tasker.worker_id',
  /** Execution: success, retryable_error, permanent_error or timeout; on the claim span too. */
  outcome: 'tasker.outcome',
  /** What storing the result did: complete, retry, error, stored, stale, noop or unstored. */
  resultOutcome: 'tasker.result_outcome',
  resultInline: 'tasker.result_inline',
  errorCode: 'tasker.error_code',
  errorType: 'error.type',
  messagingSystem: 'messaging.system',
  messagingOperation: 'messaging.operation.type',
  messagingDestination: 'messaging.destination.name',
  messageId: 'messaging.message.id',
} as const;

/** Where a task creation came from. */
export type TaskSource = 'api' | 'queue' | 'library';

export interface TracedTask {
  taskUuid: string;
  namespace: string;
  template: string;
  version: string;
  correlationId: string;
  source: TaskSource;
}

/** The fields of a claimed step the spans use (ClaimedStep has them). */
export interface TracedStep {
  taskUuid: string;
  stepUuid: string;
  stepName: string;
  attempt: number;
  maxAttempts: number;
  correlationId: string;
  msgId: string;
}

/** A step execution's outcome (StepOutcome has this shape). */
export type TracedOutcome =
  | { success: true }
  | { success: false; failure: { message: string; error_type: string; retryable: boolean; code?: string } };

/** Store outcomes that mean the result was not kept: the claim span ends in error. */
const UNSTORED = 'unstored';

export class TaskerTracing {
  readonly tracer: Tracer;
  /** False once a root span came back without the task's ids: the provider lacks TaskRootIdGenerator. */
  private rootIdsHonoured = true;

  constructor(tracer: Tracer) {
    this.tracer = tracer;
  }

  /**
   * Starts the task's root span, `tasker.task.create`, with the task's trace id and root span id. A caller's
   * span (`traceparent`: the header of POST /v1/tasks, or a field of a task request message; ignored when
   * malformed) is linked, not made the parent: the task's trace must be derivable from the task alone.
   * Under a provider without TaskRootIdGenerator, the span is instead a child of the (then never exported)
   * derived root, so the trace id still equals the task's and the steps still find their parent's trace.
   */
  startTaskCreate(task: TracedTask, traceparent?: unknown): Span {
    const caller = parseTraceparent(traceparent);
    const links: Link[] =
      caller === undefined ? [] : [{ context: caller, attributes: { 'tasker.link': 'caller' } }];
    const options: SpanOptions = {
      kind: task.source === 'queue' ? SpanKind.CONSUMER : SpanKind.INTERNAL,
      attributes: {
        [SPAN_ATTRIBUTES.taskUuid]: task.taskUuid,
        [SPAN_ATTRIBUTES.namespace]: task.namespace,
        [SPAN_ATTRIBUTES.template]: task.template,
        [SPAN_ATTRIBUTES.templateVersion]: task.version,
        [SPAN_ATTRIBUTES.correlationId]: task.correlationId,
        [SPAN_ATTRIBUTES.taskSource]: task.source,
      },
      links,
    };
    if (this.rootIdsHonoured) {
      const span = withTaskRootIds(task.taskUuid, () =>
        this.tracer.startSpan(SPAN_NAMES.taskCreate, { ...options, root: true }),
      );
      const ids = span.spanContext();
      if (ids.traceId === traceIdForTask(task.taskUuid) && ids.spanId === rootSpanIdForTask(task.taskUuid)) {
        return span;
      }
      // Left unended, so never exported; every later task takes the branch below directly.
      this.rootIdsHonoured = false;
    }
    return this.tracer.startSpan(SPAN_NAMES.taskCreate, options, taskParentContext(task.taskUuid));
  }

  /** Ends the create span of a task that was committed. */
  endTaskCreate(span: Span, created: { enqueuedSteps: number; state: string }): void {
    span.setAttribute(SPAN_ATTRIBUTES.enqueuedSteps, created.enqueuedSteps);
    span.setAttribute(SPAN_ATTRIBUTES.taskState, created.state);
    span.addEvent('tasker.steps.enqueued', { [SPAN_ATTRIBUTES.enqueuedSteps]: created.enqueuedSteps });
    span.end();
  }

  /** Ends the create span of a creation that failed (duplicate identity, database error). */
  failTaskCreate(span: Span, error: unknown): void {
    recordError(span, error);
    span.end();
  }

  /**
   * Starts the spans of one claimed attempt of a step: `tasker.step.claim`, a child of the task's root span
   * built from the task uuid (no context travels with the queue message), lasting until the lease is
   * released. The returned StepTrace adds the execute and result spans under it and ends it.
   */
  startStep(step: TracedStep, namespace: string, workerId: string, queue: string): StepTrace {
    const attributes = stepAttributes(step, namespace);
    const claim = this.tracer.startSpan(
      SPAN_NAMES.stepClaim,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          ...attributes,
          [SPAN_ATTRIBUTES.workerId]: workerId,
          [SPAN_ATTRIBUTES.messagingSystem]: 'pgmq',
          [SPAN_ATTRIBUTES.messagingOperation]: 'process',
          [SPAN_ATTRIBUTES.messagingDestination]: queue,
          [SPAN_ATTRIBUTES.messageId]: step.msgId,
        },
      },
      taskParentContext(step.taskUuid),
    );
    return new StepTrace(this.tracer, claim, attributes);
  }
}

/** The spans of one claimed attempt of a step (TaskerTracing.startStep). */
export class StepTrace {
  private readonly tracer: Tracer;
  /** `tasker.step.claim`, the parent of the others. */
  readonly claim: Span;
  private readonly attributes: Attributes;

  constructor(tracer: Tracer, claim: Span, attributes: Attributes) {
    this.tracer = tracer;
    this.claim = claim;
    this.attributes = attributes;
  }

  /**
   * Runs the handler (`execute` returns the outcome; a failed handler is an outcome, not a rejection) in
   * `tasker.step.execute`, the active span meanwhile, so spans the handler starts nest under it.
   */
  async execute<O extends TracedOutcome>(execute: () => Promise<O>): Promise<O> {
    const span = this.child(SPAN_NAMES.stepExecute, this.attributes);
    try {
      const outcome = await context.with(trace.setSpan(context.active(), span), execute);
      recordOutcome(span, outcome);
      return outcome;
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /** Runs `store` (the result's round trip) in `tasker.step.result`. */
  async storeResult<R extends { outcome: string }>(inline: boolean, store: () => Promise<R>): Promise<R> {
    const span = this.child(SPAN_NAMES.stepResult, {
      ...this.attributes,
      [SPAN_ATTRIBUTES.resultInline]: inline,
    });
    try {
      const stored = await store();
      span.setAttribute(SPAN_ATTRIBUTES.resultOutcome, stored.outcome);
      if (stored.outcome === UNSTORED) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'the result could not be stored' });
      }
      return stored;
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /**
   * Ends the claim span with the execution's outcome and what became of the result (a store outcome, or
   * `interrupted` when shutdown handed the step back). A failed attempt or an unstored result is an error.
   */
  end(executed: TracedOutcome, resultOutcome: string): void {
    this.claim.setAttribute(SPAN_ATTRIBUTES.resultOutcome, resultOutcome);
    recordOutcome(this.claim, executed);
    if (resultOutcome === UNSTORED) {
      this.claim.setStatus({ code: SpanStatusCode.ERROR, message: 'the result could not be stored' });
    }
    this.claim.end();
  }

  private child(name: string, attributes: Attributes): Span {
    return this.tracer.startSpan(name, { attributes }, trace.setSpan(ROOT_CONTEXT, this.claim));
  }
}

/** Attributes shared by a step attempt's spans. */
function stepAttributes(step: TracedStep, namespace: string): Attributes {
  return {
    [SPAN_ATTRIBUTES.taskUuid]: step.taskUuid,
    [SPAN_ATTRIBUTES.stepUuid]: step.stepUuid,
    [SPAN_ATTRIBUTES.correlationId]: step.correlationId,
    [SPAN_ATTRIBUTES.namespace]: namespace,
    [SPAN_ATTRIBUTES.stepName]: step.stepName,
    [SPAN_ATTRIBUTES.attempt]: step.attempt,
    [SPAN_ATTRIBUTES.maxAttempts]: step.maxAttempts,
  };
}

function recordOutcome(span: Span, outcome: TracedOutcome): void {
  if (outcome.success) {
    span.setAttribute(SPAN_ATTRIBUTES.outcome, 'success');
    return;
  }
  const { failure } = outcome;
  span.setAttribute(SPAN_ATTRIBUTES.outcome, stepFailureOutcome(failure));
  span.setAttribute(SPAN_ATTRIBUTES.errorType, failure.error_type);
  if (failure.code !== undefined) span.setAttribute(SPAN_ATTRIBUTES.errorCode, failure.code);
  // What recordException writes, from the classified failure (the thrown value stays in the executor).
  span.addEvent('exception', { 'exception.type': failure.error_type, 'exception.message': failure.message });
  span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
}

function recordError(span: Span, error: unknown): void {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    span.recordException(error);
    span.setAttribute(SPAN_ATTRIBUTES.errorType, typeof code === 'string' ? code : error.name);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
  }
}
