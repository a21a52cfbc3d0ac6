import { createHash } from 'node:crypto';
import { ROOT_CONTEXT, TraceFlags, isSpanContextValid, trace } from '@opentelemetry/api';
import type { Context, SpanContext } from '@opentelemetry/api';

/**
 * A task's trace is derived from the task itself, so that any process — a worker that claims a step, another
 * orchestrator — can name the task's root span from a step message's task_uuid alone, without a column or a
 * message field to carry a context:
 *
 * - trace id = the task's UUID without dashes. A UUIDv7 is 128 bits, never all zeros, and its last 62 bits
 *   are random (what W3C Trace Context level 2 asks of a trace id's right part).
 * - root span id = the first 8 bytes of SHA-256 over the task UUID's canonical text (lowercase, with dashes).
 *
 * The span `tasker.task.create` gets exactly these ids when the tracer provider uses TaskRootIdGenerator
 * (src/services/serviceTracing.ts does); every later span of the task has it as parent.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ZERO_SPAN_ID = '0000000000000000';

function canonicalUuid(taskUuid: string): string {
  const canonical = taskUuid.toLowerCase();
  if (!UUID.test(canonical) || canonical === '00000000-0000-0000-0000-000000000000') {
    throw new TypeError(`not a task UUID: ${JSON.stringify(taskUuid)}`);
  }
  return canonical;
}

/** The trace id of a task: its UUID as 32 lowercase hex digits. @throws TypeError for anything but a UUID */
export function traceIdForTask(taskUuid: string): string {
  return canonicalUuid(taskUuid).replaceAll('-', '');
}

/** The span id of a task's root span (`tasker.task.create`). @throws TypeError for anything but a UUID */
export function rootSpanIdForTask(taskUuid: string): string {
  const digest = createHash('sha256').update(canonicalUuid(taskUuid)).digest('hex');
  const first = digest.slice(0, 16);
  // An all-zero span id is invalid; a digest starting with 8 zero bytes happens with odds 2^-64.
  return first === ZERO_SPAN_ID ? digest.slice(16, 32) : first;
}

/**
 * The root span of a task as a remote parent. It is marked sampled: a sampler that decides on the trace id
 * alone (ParentBased with TraceIdRatioBased for remote parents, as serviceTracing.ts sets up) then takes the
 * same decision in every process as it took for the root span.
 */
export function taskRootSpanContext(taskUuid: string): SpanContext {
  return {
    traceId: traceIdForTask(taskUuid),
    spanId: rootSpanIdForTask(taskUuid),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  };
}

/** A context whose span is the task's root span: the parent of the task's step spans. */
export function taskParentContext(taskUuid: string): Context {
  return trace.setSpanContext(ROOT_CONTEXT, taskRootSpanContext(taskUuid));
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The caller's span from a W3C `traceparent` header (or message field), or undefined when there is none or
 * it is malformed: not a string (a repeated header is an array), version ff, all-zero ids, upper-case hex,
 * version 00 with extra fields.
 */
export function parseTraceparent(header: unknown): SpanContext | undefined {
  if (typeof header !== 'string') return undefined;
  const match = TRACEPARENT.exec(header.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const spanContext: SpanContext = {
    traceId: traceId as string,
    spanId: spanId as string,
    traceFlags: Number.parseInt(flags as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** What the SDK's IdGenerator interface asks (@opentelemetry/sdk-trace-base), without importing the SDK. */
export interface SpanIdGenerator {
  generateTraceId(): string;
  generateSpanId(): string;
}

/**
 * Ids for the one span being started by withTaskRootIds, consumed by TaskRootIdGenerator. The SDK asks for
 * ids synchronously inside tracer.startSpan, so a slot set and cleared around that call cannot be seen by
 * any other span start.
 */
let pendingTraceId: string | undefined;
let pendingSpanId: string | undefined;

/**
 * An IdGenerator for the tracer provider: the task ids inside withTaskRootIds, the fallback's (the SDK's
 * RandomIdGenerator) everywhere else.
 */
export class TaskRootIdGenerator implements SpanIdGenerator {
  private readonly fallback: SpanIdGenerator;

  constructor(fallback: SpanIdGenerator) {
    this.fallback = fallback;
  }

  generateTraceId(): string {
    const id = pendingTraceId;
    if (id === undefined) return this.fallback.generateTraceId();
    pendingTraceId = undefined;
    return id;
  }

  generateSpanId(): string {
    const id = pendingSpanId;
    if (id === undefined) return this.fallback.generateSpanId();
    pendingSpanId = undefined;
    return id;
  }
}

/**
 * Runs `startSpan` (which must start one root span, synchronously) so that a TaskRootIdGenerator gives that
 * span the task's trace id and root span id. Whether it did is for the caller to check: a provider without
 * the generator ignores the slot.
 */
export function withTaskRootIds<T>(taskUuid: string, startSpan: () => T): T {
  pendingTraceId = traceIdForTask(taskUuid);
  pendingSpanId = rootSpanIdForTask(taskUuid);
  try {
    return startSpan();
  } finally {
    pendingTraceId = undefined;
    pendingSpanId = undefined;
  }
}
