import type { FastifyInstance } from 'fastify';
import {
  DLQ_CLOSING_STATUSES,
  DLQ_REASONS,
  DLQ_RESOLUTION_STATUSES,
  dlqStats,
  getDlqEntriesForTask,
  getDlqEntry,
  listDlqEntries,
  updateDlqEntry,
} from '../../../db/queries/dlq.ts';
import type { DlqUpdate } from '../../../db/queries/dlq.ts';
import { NotFoundError } from '../../../domain/errors.ts';
import type { RestContext } from '../restContext.ts';
import {
  anyJson,
  errorResponses,
  identifierSchema,
  nullableString,
  nullableTimestamp,
  taskUuidParams,
  timestamp,
  uuidSchema,
} from '../schemas/common.ts';

const dlqEntrySchema = {
  type: 'object',
  description:
    'A dead-letter record: why a task was given up on, a snapshot of it, and its investigation status',
  required: ['dlq_entry_uuid', 'task_uuid', 'dlq_reason', 'resolution_status', 'dlq_timestamp'],
  properties: {
    dlq_entry_uuid: uuidSchema('The entry'),
    task_uuid: uuidSchema('The task'),
    namespace: { type: 'string' },
    task_name: { type: 'string' },
    original_state: { type: 'string', description: 'Task state when it was dead-lettered' },
    dlq_reason: { type: 'string', enum: [...DLQ_REASONS] },
    dlq_timestamp: timestamp('When it was dead-lettered'),
    resolution_status: { type: 'string', enum: [...DLQ_RESOLUTION_STATUSES] },
    resolution_timestamp: nullableTimestamp('When it was resolved'),
    resolution_notes: nullableString('What the operator did'),
    resolved_by: nullableString('Who resolved it'),
    task_snapshot: anyJson('The task and its steps at the time'),
    metadata: { type: 'object', additionalProperties: true },
  },
} as const;

const dlqEntryParams = {
  type: 'object',
  required: ['dlq_entry_uuid'],
  additionalProperties: false,
  properties: { dlq_entry_uuid: uuidSchema('The DLQ entry') },
} as const;

interface DlqListQuery {
  resolution_status?: string;
  reason?: string;
  namespace?: string;
  limit: number;
  offset: number;
}

function entryNotFound(uuid: string): NotFoundError {
  return new NotFoundError(
    'TASKER_DLQ_ENTRY_NOT_FOUND',
    `no DLQ entry ${uuid} exists; GET /v1/dlq lists entries`,
    { details: { dlq_entry_uuid: uuid } },
  );
}

export function registerDlqRoutes(app: FastifyInstance, ctx: RestContext): void {
  app.get<{ Querystring: DlqListQuery }>(
    '/v1/dlq',
    {
      config: { access: { permission: 'dlq:read' } },
      schema: {
        tags: ['dlq'],
        summary: 'List DLQ entries',
        description: 'Newest first.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            resolution_status: { type: 'string', enum: [...DLQ_RESOLUTION_STATUSES] },
            reason: { type: 'string', enum: [...DLQ_REASONS] },
            namespace: identifierSchema('Only entries of tasks in this namespace'),
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 50, description: '1..100' },
            offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['entries', 'total'],
            properties: {
              entries: { type: 'array', items: dlqEntrySchema },
              total: { type: 'integer', description: 'Entries matching the filter' },
              limit: { type: 'integer' },
              offset: { type: 'integer' },
            },
          },
          ...errorResponses(400),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { entries, total } = await listDlqEntries(ctx.db, {
        ...(q.resolution_status !== undefined && { resolutionStatus: q.resolution_status }),
        ...(q.reason !== undefined && { reason: q.reason }),
        ...(q.namespace !== undefined && { namespace: q.namespace }),
        limit: q.limit,
        offset: q.offset,
      });
      return { entries, total, limit: q.limit, offset: q.offset };
    },
  );

  app.get(
    '/v1/dlq/stats',
    {
      config: { access: { permission: 'dlq:stats' } },
      schema: {
        tags: ['dlq'],
        summary: 'DLQ statistics',
        response: {
          200: {
            type: 'object',
            required: ['total', 'by_reason', 'by_status'],
            properties: {
              total: { type: 'integer' },
              by_reason: { type: 'object', additionalProperties: { type: 'integer' } },
              by_status: { type: 'object', additionalProperties: { type: 'integer' } },
              oldest_pending_at: nullableTimestamp('Oldest entry still pending'),
              avg_resolution_minutes: { type: ['number', 'null'] },
            },
          },
          ...errorResponses(),
        },
      },
    },
    async () => dlqStats(ctx.db),
  );

  app.get<{ Params: { dlq_entry_uuid: string } }>(
    '/v1/dlq/entry/:dlq_entry_uuid',
    {
      config: { access: { permission: 'dlq:read' } },
      schema: {
        tags: ['dlq'],
        summary: 'Get a DLQ entry',
        params: dlqEntryParams,
        response: { 200: dlqEntrySchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const entry = await getDlqEntry(ctx.db, request.params.dlq_entry_uuid);
      if (entry === undefined) throw entryNotFound(request.params.dlq_entry_uuid);
      return entry;
    },
  );

  app.get<{ Params: { task_uuid: string } }>(
    '/v1/dlq/task/:task_uuid',
    {
      config: { access: { permission: 'dlq:read' } },
      schema: {
        tags: ['dlq'],
        summary: "A task's DLQ entries",
        description: 'Every entry of the task, newest first (empty when it was never dead-lettered).',
        params: taskUuidParams,
        response: {
          200: {
            type: 'object',
            required: ['entries'],
            properties: { entries: { type: 'array', items: dlqEntrySchema } },
          },
          ...errorResponses(400),
        },
      },
    },
    async (request) => ({ entries: await getDlqEntriesForTask(ctx.db, request.params.task_uuid) }),
  );

  app.patch<{ Params: { dlq_entry_uuid: string }; Body: DlqUpdate }>(
    '/v1/dlq/entry/:dlq_entry_uuid',
    {
      config: { access: { permission: 'dlq:update' } },
      schema: {
        tags: ['dlq'],
        summary: 'Resolve a DLQ entry',
        description:
          'Records how a pending entry was dealt with (fix the task through the step actions first). ' +
          'An entry already resolved cannot change again (409).',
        params: dlqEntryParams,
        body: {
          type: 'object',
          required: ['resolution_status'],
          additionalProperties: false,
          properties: {
            resolution_status: { type: 'string', enum: [...DLQ_CLOSING_STATUSES] },
            resolution_notes: { type: 'string', minLength: 1, maxLength: 2000 },
            resolved_by: { type: 'string', minLength: 1, maxLength: 128 },
          },
        },
        response: {
          200: dlqEntrySchema,
          ...errorResponses(400, 404, [409, 'Already resolved'], 413, 415),
        },
      },
    },
    async (request) => updateDlqEntry(ctx.db, request.params.dlq_entry_uuid, request.body),
  );
}
