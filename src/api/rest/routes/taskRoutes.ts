import type { FastifyInstance, FastifyReply } from 'fastify';
import { cancelTask } from '../../../db/queries/orchestrationQueues.ts';
import { getTaskSnapshot, getTaskView, listTaskSummaries } from '../../../db/queries/taskViews.ts';
import type { TaskViewRow } from '../../../db/queries/taskViews.ts';
import { servedNamespaces } from '../../../db/queries/workerRegistry.ts';
import { TERMINAL_TASK_STATES } from '../../../domain/state/taskStates.ts';
import { ConflictError, NotFoundError } from '../../../domain/errors.ts';
import { initializeTask } from '../../../orchestration/taskInitializer.ts';
import { ApiError } from '../apiError.ts';
import { isoTimestampToDate, validatorCompiler } from '../validation.ts';
import { createdTaskView } from '../createdTaskView.ts';
import type { RestContext } from '../restContext.ts';
import { errorResponses, taskUuidParams } from '../schemas/common.ts';
import {
  taskListQuerySchema,
  taskListSchema,
  taskRequestJsonSchema,
  taskViewSchema,
} from '../schemas/taskSchemas.ts';
import { taskSummary, taskView } from '../views.ts';

interface TaskListQuery {
  namespace?: string;
  name?: string;
  status?: string[];
  created_after?: string;
  created_before?: string;
  page: number;
  per_page: number;
}

function noLiveWorker(namespace: string): { code: 'no_live_worker'; message: string; namespace: string } {
  return {
    code: 'no_live_worker',
    message:
      `no live worker serves namespace "${namespace}": its steps wait until one starts ` +
      `(npx tasker worker --templates <folder with the ${namespace} templates> --handlers <module>)`,
    namespace,
  };
}

export function taskNotFound(taskUuid: string): NotFoundError {
  return new NotFoundError(
    'TASKER_TASK_NOT_FOUND',
    `no task ${taskUuid} exists; check the uuid (GET /v1/tasks lists tasks). Finished tasks are deleted ` +
      '[orchestration.retention] finished_task_hours after they finish',
    { details: { task_uuid: taskUuid } },
  );
}

/** The answer to cancelling a task that is already finished (`already_<state>` from tasker.cancel_task). */
export function taskAlreadyFinished(taskUuid: string, outcome: `already_${string}`): ConflictError {
  const state = outcome.slice('already_'.length);
  return new ConflictError(
    'TASKER_TASK_TERMINAL',
    `task ${taskUuid} is already ${state} and cannot be cancelled; only unfinished tasks can be`,
    { details: { task_uuid: taskUuid, status: state } },
  );
}

const MAX_WAIT_SECONDS = 60;

const waitQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    wait: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_WAIT_SECONDS,
      default: 0,
      description: `Seconds to wait for the task to finish (long poll), 0..${MAX_WAIT_SECONDS}; capped just below the request timeout`,
    },
  },
} as const;

const POLL_MS = 250;
const FINISHED = new Set<string>(TERMINAL_TASK_STATES);

/**
 * Aborts when the client disconnects before the answer is sent. Not `request.signal`: a request's 'close'
 * fires as soon as its body has been read, which for a POST is before the wait even starts.
 */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** Reads the task until it is finished (or gone), `waitMs` passes, or the client goes away. */
async function waitUntilFinished(
  ctx: RestContext,
  taskUuid: string,
  read: () => Promise<TaskViewRow | undefined>,
  waitMs: number,
  signal: AbortSignal,
  justCreated = false,
): Promise<TaskViewRow | undefined> {
  const done = (row: TaskViewRow | undefined) => row === undefined || FINISHED.has(row.status);
  if (ctx.completionWaiter !== undefined) {
    return ctx.completionWaiter.waitFor(taskUuid, read, done, waitMs, signal, { justCreated });
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    const row = await read();
    const left = deadline - Date.now();
    if (done(row) || left <= 0 || signal.aborted) return row;
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, left)));
  }
}

/**
 * The `Idempotency-Key` header of a task creation: 1..255 visible ASCII characters, or absent.
 * @throws ApiError 400 TASKER_INVALID_REQUEST for any other value
 */
function idempotencyKeyHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && /^[\x21-\x7e]{1,255}$/.test(value)) return value;
  throw new ApiError(
    400,
    'TASKER_INVALID_REQUEST',
    'the Idempotency-Key header must be one value of 1 to 255 visible ASCII characters (a UUID, say)',
    { details: { fields: [{ field: 'Idempotency-Key', location: 'header', message: 'invalid' }] } },
  );
}

/** 503 with Retry-After when the service sheds load, before any work is done for the request. */
function shedLoad(ctx: RestContext): void {
  const seconds = ctx.backpressure();
  if (seconds === null) return;
  const wait = Math.max(1, Math.ceil(seconds));
  throw new ApiError(
    503,
    'TASKER_SERVICE_OVERLOADED',
    `the orchestration service is overloaded and sheds new tasks; retry after ${wait} s`,
    { headers: { 'retry-after': String(wait) }, details: { retry_after_seconds: wait } },
  );
}

export function registerTaskRoutes(app: FastifyInstance, ctx: RestContext): void {
  app.post<{ Body: unknown; Querystring: { wait: number } }>(
    '/v1/tasks',
    {
      config: { access: { permission: 'tasks:create' } },
      schema: {
        tags: ['tasks'],
        summary: 'Create a task',
        description:
          'Runs a registered template with a JSON context. Unknown fields are refused. The identity of the ' +
          "request (per the template's identity_strategy, or idempotency_key) must be new: a duplicate is 409. " +
          'With `wait`, the answer comes as soon as the task is finished (or after `wait` seconds, with the ' +
          'task as it is then): create and await the result in one request. An `Idempotency-Key` header ' +
          '(1..255 visible ASCII characters, the same on every retry) makes a retry after a lost answer get the ' +
          'task the first attempt created: 200 with `Idempotent-Replayed: true`.',
        querystring: waitQuerySchema,
        body: taskRequestJsonSchema(),
        response: {
          201: { ...taskViewSchema, description: 'Created; Location names the task' },
          ...errorResponses(
            [400, 'Invalid request, context or missing idempotency_key'],
            [404, 'No such template registered'],
            [409, 'A task with the same identity exists'],
            413,
            415,
          ),
        },
      },
      // The body's one validator is taskRequestSchema (zod) inside initializeTask, with the domain's own error
      // codes; the JSON schema above is generated from it for the OpenAPI document and is not compiled.
      validatorCompiler: (route) => (route.httpPart === 'body' ? () => true : validatorCompiler(route)),
    },
    async (request, reply) => {
      shedLoad(ctx);
      const waitMs = Math.min(request.query.wait * 1000, ctx.maxWaitMs);
      const requestKey = idempotencyKeyHeader(request.headers['idempotency-key']);
      const { created, template, replayed } = await initializeTask(ctx.db, request.body, {
        templates: ctx.templates,
        limits: ctx.limits,
        ...(requestKey !== undefined && { requestKey }),
        ...(ctx.processorUuid !== undefined && { processorUuid: ctx.processorUuid }),
        ...(ctx.metrics !== undefined && { metrics: ctx.metrics }),
        ...(ctx.tracing !== undefined && {
          tracing: ctx.tracing,
          source: 'api' as const,
          traceparent: request.headers.traceparent,
        }),
      });
      if (replayed === true && waitMs === 0) {
        // A retry of a request whose answer was lost: the task that request created, as it is now.
        const row = await getTaskView(ctx.db, created.taskUuid);
        if (row === undefined) throw taskNotFound(created.taskUuid);
        return reply
          .code(200)
          .header('idempotent-replayed', 'true')
          .header('location', `/v1/tasks/${created.taskUuid}`)
          .send(taskView(row));
      }
      if (waitMs > 0) {
        // The task runs while this request waits; the finished view is the answer.
        const read = () => getTaskView(ctx.db, created.taskUuid);
        const row = await waitUntilFinished(ctx, created.taskUuid, read, waitMs, clientGone(reply), true);
        if (row === undefined) throw taskNotFound(created.taskUuid);
        if (replayed === true) reply.header('idempotent-replayed', 'true');
        return reply
          .code(replayed === true ? 200 : 201)
          .header('location', `/v1/tasks/${created.taskUuid}`)
          .send(taskView(row));
      }
      // One primary-key read. The dependencies come from the template the task was planned from, which
      // initializeTask hands back: the request reads the registry once, whether the template cache is on or off.
      const snapshot = await getTaskSnapshot(ctx.db, created.taskUuid);
      if (snapshot === undefined)
        throw new Error(`task ${created.taskUuid} vanished right after it was created`);
      return reply
        .code(201)
        .header('location', `/v1/tasks/${created.taskUuid}`)
        .send(createdTaskView(snapshot, template));
    },
  );

  app.get<{ Querystring: TaskListQuery }>(
    '/v1/tasks',
    {
      config: { access: { permission: 'tasks:list' } },
      schema: {
        tags: ['tasks'],
        summary: 'List tasks',
        description: 'Newest first, filtered and paginated.',
        querystring: taskListQuerySchema,
        response: { 200: taskListSchema, ...errorResponses(400) },
      },
      preValidation: (request, _reply, done) => {
        // ?status=a,b is the same as ?status=a&status=b.
        const query = request.query as unknown as Record<string, unknown>;
        const status = query.status;
        if (typeof status === 'string' && status.includes(',')) query.status = status.split(',');
        else if (Array.isArray(status))
          query.status = (status as unknown[]).flatMap((s) => (typeof s === 'string' ? s.split(',') : [s]));
        done();
      },
    },
    async (request) => {
      const query = request.query;
      const createdAfter =
        query.created_after === undefined ? undefined : isoTimestampToDate(query.created_after);
      const createdBefore =
        query.created_before === undefined ? undefined : isoTimestampToDate(query.created_before);
      const { total, tasks } = await listTaskSummaries(ctx.db, {
        ...(query.namespace !== undefined && { namespace: query.namespace }),
        ...(query.name !== undefined && { name: query.name }),
        ...(query.status !== undefined && { statuses: query.status }),
        ...(createdAfter !== undefined && { createdAfter }),
        ...(createdBefore !== undefined && { createdBefore }),
        page: query.page,
        perPage: query.per_page,
      });
      const totalPages = Math.ceil(total / query.per_page);
      return {
        tasks: tasks.map(taskSummary),
        pagination: {
          page: query.page,
          per_page: query.per_page,
          total_count: total,
          total_pages: totalPages,
          has_next: query.page < totalPages,
          has_previous: query.page > 1,
        },
      };
    },
  );

  app.get<{ Params: { task_uuid: string }; Querystring: { wait: number } }>(
    '/v1/tasks/:task_uuid',
    {
      config: { access: { permission: 'tasks:read' } },
      schema: {
        tags: ['tasks'],
        summary: 'Get a task',
        description:
          'The task, its execution context and every step with its readiness. With `wait`, the answer comes ' +
          'as soon as the task is finished, or after `wait` seconds with the task as it is then.',
        params: taskUuidParams,
        querystring: waitQuerySchema,
        response: { 200: taskViewSchema, ...errorResponses(400, 404) },
      },
    },
    async (request, reply) => {
      const taskUuid = request.params.task_uuid;
      const waitMs = Math.min(request.query.wait * 1000, ctx.maxWaitMs);
      const read = () => getTaskView(ctx.db, taskUuid);
      const row =
        waitMs > 0 ? await waitUntilFinished(ctx, taskUuid, read, waitMs, clientGone(reply)) : await read();
      if (row === undefined) throw taskNotFound(taskUuid);
      const view = taskView(row);
      if (FINISHED.has(row.status)) return view;
      // An unfinished task of a namespace no worker serves waits forever; say so instead of letting the
      // caller wait in silence. One indexed read, only for unfinished tasks.
      const served = await servedNamespaces(ctx.db, [row.namespace]);
      return served.has(row.namespace) ? view : { ...view, warnings: [noLiveWorker(row.namespace)] };
    },
  );

  app.delete<{ Params: { task_uuid: string } }>(
    '/v1/tasks/:task_uuid',
    {
      config: { access: { permission: 'tasks:cancel' } },
      schema: {
        tags: ['tasks'],
        summary: 'Cancel a task',
        description:
          'Cancels the task and every step not yet finished. Steps already running finish, but their results ' +
          'are discarded and nothing new starts.',
        params: taskUuidParams,
        response: {
          200: { ...taskViewSchema, description: 'Cancelled: the task as it is now' },
          ...errorResponses(400, 404, [409, 'The task is already finished']),
        },
      },
    },
    async (request) => {
      const taskUuid = request.params.task_uuid;
      const outcome = await cancelTask(ctx.db, taskUuid, ctx.processorUuid ?? null);
      if (outcome === 'not_found') throw taskNotFound(taskUuid);
      if (outcome !== 'cancelled') throw taskAlreadyFinished(taskUuid, outcome);
      const row = await getTaskView(ctx.db, taskUuid);
      if (row === undefined) throw taskNotFound(taskUuid);
      return taskView(row);
    },
  );
}
