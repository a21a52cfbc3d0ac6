import { assertContextSize, DEFAULT_TASK_LIMITS, stepCountProblem } from '../domain/limits.ts';
import type { TaskLimits } from '../domain/limits.ts';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import type { Queryable } from '../db/database.ts';
import { insertTask } from '../db/queries/createTask.ts';
import type { CreatedTask, NewStepRow } from '../db/queries/createTask.ts';
import { listTemplateVersions } from '../db/queries/findTemplate.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';
import type { TaskerTracing, TaskSource } from '../observability/tracing.ts';
import { TemplateCache } from './templateCache.ts';
import { sqlStateOf, SqlState } from '../db/sqlState.ts';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.ts';
import { taskIdentityHash } from '../domain/identity/taskIdentity.ts';
import { uuidv7 } from '../domain/identity/uuidV7.ts';
import { compileInputSchema } from '../domain/template/inputValidator.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import { latestTemplateVersion } from '../domain/template/templateVersion.ts';

const TIMESTAMP_PARTS = /^(\d{4})-.*?(?:Z|[+-](\d{2}):?(\d{2}))$/i;

/**
 * What PostgreSQL's timestamptz stores as sent: years 1..9999 and an offset within ±15:59; zod's format alone
 * lets year 0 and +20:00 through, and the insert would then fail.
 */
function storableTimestamp(value: string): boolean {
  const parts = TIMESTAMP_PARTS.exec(value);
  if (parts === null) return false;
  return Number(parts[1]) >= 1 && Number(parts[2] ?? 0) <= 15;
}

const TIMESTAMP_MESSAGE =
  'must be an ISO-8601 date-time with offset between years 1 and 9999, such as 2026-03-01T12:00:00Z';

function describeBody(input: unknown): string {
  if (input === undefined) return 'no body';
  if (Array.isArray(input)) return 'an array';
  if (input === null) return 'null';
  return `a ${typeof input}`;
}

/**
 * A request to run a template (reference §1 TaskRequest). Unknown fields are rejected. The one validator of a
 * request, whether it comes over HTTP, from a queue message or from a library call; the OpenAPI document of
 * POST /v1/tasks is generated from it.
 */
export const taskRequestSchema = z.strictObject(
  {
    name: z.string().min(1).max(64),
    namespace: z.string().min(1).max(64).default('default'),
    // Left out: the highest registered version of the template (semantic version order), chosen at creation.
    version: z.string().min(1).max(32).optional(),
    context: z.record(z.string(), z.unknown()).default({}),
    initiator: z.string().max(128).nullish(),
    source_system: z.string().max(128).nullish(),
    reason: z.string().max(128).nullish(),
    tags: z.array(z.string().max(128)).max(50).default([]),
    priority: z.number().int().min(-100).max(100).default(0),
    correlation_id: z.uuid().nullish(),
    parent_correlation_id: z.uuid().nullish(),
    idempotency_key: z.string().min(1).max(255).nullish(),
    requested_at: z.iso
      .datetime({ offset: true, error: (issue) => `${TIMESTAMP_MESSAGE} (got ${quoted(issue.input)})` })
      .refine(storableTimestamp, { error: (issue) => `${TIMESTAMP_MESSAGE} (got ${quoted(issue.input)})` })
      .nullish(),
    options: z.record(z.string(), z.unknown()).nullish(),
  },
  {
    error: (issue) =>
      issue.code === 'invalid_type'
        ? `the request body must be a JSON object such as {"namespace": "payments", "name": "process_refund", "version": "1.0.0", "context": {...}} (got ${describeBody(issue.input)})`
        : undefined,
  },
);

/** Echoes a bad value in a message without letting a huge one flood it. */
function quoted(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 66 ? `${text.slice(0, 64)}…` : text;
}

interface FieldProblem {
  field: string;
  message: string;
}

/** Turns a request body into a validated TaskRequest, or a ValidationError with one entry per bad field. */
function parseTaskRequest(body: unknown): z.output<typeof taskRequestSchema> {
  const result = taskRequestSchema.safeParse(body);
  if (result.success) return result.data;
  const problems: FieldProblem[] = result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: key, message: 'unknown field' }))
      : [{ field: issue.path.join('.') || '(body)', message: issue.message }],
  );
  throw new ValidationError(
    'TASKER_INVALID_TASK_REQUEST',
    `invalid task request: ${problems.map((p) => (p.field === '(body)' ? p.message : `${p.field}: ${p.message}`)).join('; ')}`,
    { details: { fields: problems } },
  );
}

/** Steps and edges for a new task, with fresh UUIDv7 keys. */
export function planSteps(template: TaskTemplate): {
  steps: NewStepRow[];
  edges: { from: string; to: string }[];
} {
  const uuids = new Map(template.steps.map((step) => [step.name, uuidv7()] as const));
  const steps = template.steps.map((step): NewStepRow => ({
    workflow_step_uuid: uuids.get(step.name) ?? uuidv7(),
    name: step.name,
    handler_callable: step.handler.callable,
    inputs: step.handler.initialization,
    retryable: step.retry.retryable,
    max_attempts: step.retry.maxAttempts,
    backoff_strategy: step.retry.backoff,
    backoff_base_ms: step.retry.backoffBaseMs,
    max_backoff_ms: step.retry.maxBackoffMs,
    timeout_seconds: step.timeoutSeconds,
  }));
  const edges = template.steps.flatMap((step) =>
    step.dependencies.map((dependency) => ({
      from: uuids.get(dependency) ?? '',
      to: uuids.get(step.name) ?? '',
    })),
  );
  return { steps, edges };
}

/** Used when the caller passes no cache: templates are read-mostly and creation is a hot path. */
const sharedTemplateCache = new TemplateCache();

export interface CreateTaskOptions {
  /** Where registered templates are looked up. @defaultValue a process-wide cache with the default TTL */
  templates?: TemplateCache;
  /** Recorded on transitions for audit. */
  processorUuid?: string;
  /** The orchestration_task_requests message this request came from: archived in the same commit. */
  requestMsgId?: string;
  /** Counts the created task (tasker_tasks_created_total). @defaultValue none */
  metrics?: TaskerMetrics;
  /** Starts the task's trace (root span `tasker.task.create`). @defaultValue none: no span */
  tracing?: TaskerTracing;
  /** The requester's W3C traceparent (a header or message field), linked from the task's root span. */
  traceparent?: unknown;
  /** Recorded on the root span. @defaultValue 'library' */
  source?: TaskSource;
  /** `[limits]`: steps per task and context size. @defaultValue DEFAULT_TASK_LIMITS */
  limits?: TaskLimits;
  /**
   * The caller's key for this one request (the `Idempotency-Key` header), the same on every retry of it. For a
   * template whose identity is `always_unique` (and a request without `idempotency_key`), it becomes the task's
   * identity, so a retry after a lost answer finds the task the first attempt created (`replayed`) instead of
   * making a second one. Other strategies are idempotent already and ignore it.
   */
  requestKey?: string;
}

/**
 * Creates a task from a request: the template must be registered; the context must satisfy the template's
 * input_schema; the identity (per the template's strategy, or the request's idempotency_key) must be new.
 * Steps, edges and the first enqueues happen in one commit.
 * @throws ValidationError (TASKER_INVALID_TASK_REQUEST, TASKER_INVALID_CONTEXT, TASKER_IDEMPOTENCY_KEY_REQUIRED),
 *   NotFoundError (TASKER_TEMPLATE_NOT_FOUND), ConflictError (TASKER_DUPLICATE_TASK)
 */
export async function createTask(
  db: Queryable,
  body: unknown,
  options: CreateTaskOptions = {},
): Promise<CreatedTask> {
  return (await initializeTask(db, body, options)).created;
}

/** A created task and the template it was planned from. */
export interface InitializedTask {
  created: CreatedTask;
  /** The request repeated an earlier one (same `requestKey`): `created` is the task that one made. */
  replayed?: boolean;
  /** The very template the steps were planned from, so a caller describing the task needs no second read. */
  template: TaskTemplate;
}

/**
 * {@link createTask}, also returning the template it used: POST /v1/tasks answers with step dependencies
 * from it instead of looking the template up again (a second registry read per request when the template
 * cache is off, and one that could see a template re-registered in between).
 */
export async function initializeTask(
  db: Queryable,
  body: unknown,
  options: CreateTaskOptions = {},
): Promise<InitializedTask> {
  const request = parseTaskRequest(body);
  const limits = options.limits ?? DEFAULT_TASK_LIMITS;
  assertContextSize(request.context, limits);
  // One more read when the version is left out: the registry, not the cache, knows every version registered.
  const version =
    request.version ?? latestTemplateVersion(await listTemplateVersions(db, request.namespace, request.name));
  const registered =
    version === undefined
      ? undefined
      : await (options.templates ?? sharedTemplateCache).find(db, request.namespace, request.name, version);
  if (registered === undefined) {
    const versions = await listTemplateVersions(db, request.namespace, request.name);
    throw new NotFoundError(
      'TASKER_TEMPLATE_NOT_FOUND',
      `no template ${request.namespace}/${request.name}${version === undefined ? '' : ` version ${version}`} is registered` +
        (versions.length > 0
          ? `; registered versions: ${versions.join(', ')}`
          : '; start a worker that serves it (it registers its templates) or check the namespace and name'),
      { details: { namespace: request.namespace, name: request.name, version: version ?? null, versions } },
    );
  }
  const { template, namedTaskUuid } = registered;
  // Workers refuse such templates when they load them; a worker configured with a higher limit may have
  // registered this one.
  const tooManySteps = stepCountProblem(template.steps.length, limits);
  if (tooManySteps !== undefined) {
    throw new ValidationError(
      'TASKER_LIMIT_EXCEEDED',
      `template ${template.namespace}/${template.name} version ${template.version} cannot become a task: ${tooManySteps}`,
      { details: { limit: 'max_steps_per_task', steps: template.steps.length, max: limits.maxStepsPerTask } },
    );
  }
  if (template.inputSchema !== null) {
    const verdict = compileInputSchema(template.inputSchema)(request.context);
    if (!verdict.ok) {
      throw new ValidationError(
        'TASKER_INVALID_CONTEXT',
        `context does not match the input_schema of ${template.namespace}/${template.name}: ` +
          verdict.errors.map((e) => `${e.path}: ${e.message}`).join('; '),
        { details: { fields: verdict.errors } },
      );
    }
  }
  // Only always_unique has no identity to recognise a retry by; the request key gives it one, known only to
  // the caller that made it up, so answering a repeat with the task reveals nothing to anyone else.
  const replayable =
    options.requestKey !== undefined &&
    template.identityStrategy === 'always_unique' &&
    request.idempotency_key == null;
  const identityHash = taskIdentityHash({
    namedTaskUuid,
    strategy: template.identityStrategy,
    context: request.context,
    ...(request.idempotency_key != null && { idempotencyKey: request.idempotency_key }),
    ...(replayable && { uniqueId: `request-key\0${namedTaskUuid}\0${options.requestKey}` }),
  });
  const { steps, edges } = planSteps(template);
  const taskUuid = uuidv7();
  const correlationId = request.correlation_id ?? uuidv4();
  const span = options.tracing?.startTaskCreate(
    {
      taskUuid,
      namespace: template.namespace,
      template: template.name,
      version: template.version,
      correlationId,
      source: options.source ?? 'library',
    },
    options.traceparent,
  );
  try {
    const created = await insertTask(
      db,
      {
        task_uuid: taskUuid,
        named_task_uuid: namedTaskUuid,
        namespace_name: template.namespace,
        context: request.context,
        identity_hash: identityHash,
        initiator: request.initiator ?? null,
        source_system: request.source_system ?? null,
        reason: request.reason ?? null,
        tags: request.tags,
        priority: request.priority,
        correlation_id: correlationId,
        parent_correlation_id: request.parent_correlation_id ?? null,
        requested_at: request.requested_at ?? null,
        processor_uuid: options.processorUuid ?? null,
      },
      steps,
      edges,
      options.requestMsgId,
    );
    options.metrics?.tasksCreated.inc({ namespace: template.namespace, template: template.name });
    if (span !== undefined) options.tracing?.endTaskCreate(span, created);
    return { created, template };
  } catch (error) {
    if (span !== undefined) options.tracing?.failTaskCreate(span, error);
    if (
      sqlStateOf(error) === SqlState.uniqueViolation &&
      (error as { constraint?: string }).constraint === 'tasks_identity_hash_key'
    ) {
      if (replayable) {
        const earlier = await findTaskByIdentity(db, identityHash);
        if (earlier !== undefined) return { created: earlier, template, replayed: true };
      }
      // Like tasker-core, the existing task's id is not returned: identity must not be probeable.
      throw new ConflictError(
        'TASKER_DUPLICATE_TASK',
        `a task with the same identity already exists for ${template.namespace}/${template.name} ` +
          `(identity strategy "${template.identityStrategy}"${request.idempotency_key != null ? ', same idempotency_key' : ', same context'})`,
        { details: { namespace: template.namespace, name: template.name }, cause: error },
      );
    }
    throw error;
  }
}

/** The task holding an identity, as a CreatedTask (its first enqueues are not known any more: 0). */
async function findTaskByIdentity(db: Queryable, identityHash: string): Promise<CreatedTask | undefined> {
  const { rows } = await db.query<{ task_uuid: string; current_state: string }>(
    'SELECT task_uuid::text AS task_uuid, current_state FROM tasker.tasks WHERE identity_hash = $1',
    [identityHash],
  );
  const row = rows[0];
  return row === undefined
    ? undefined
    : { taskUuid: row.task_uuid, state: row.current_state, enqueuedSteps: 0 };
}
