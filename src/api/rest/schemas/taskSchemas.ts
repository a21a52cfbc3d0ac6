import { z } from 'zod';
import { STEP_STATES } from '../../../domain/state/stepStates.ts';
import { TASK_STATES } from '../../../domain/state/taskStates.ts';
import { taskRequestSchema } from '../../../orchestration/taskInitializer.ts';
import {
  anyJson,
  identifierSchema,
  nullableString,
  nullableTimestamp,
  timestamp,
  uuidSchema,
} from './common.ts';

export const stepViewSchema = {
  type: 'object',
  description: 'A workflow step with its readiness',
  required: [
    'step_uuid',
    'task_uuid',
    'name',
    'status',
    'handler',
    'dependencies',
    'attempts',
    'max_attempts',
  ],
  properties: {
    step_uuid: uuidSchema('The step'),
    task_uuid: uuidSchema('Its task'),
    name: { type: 'string', description: 'Step name from the template' },
    status: { type: 'string', enum: [...STEP_STATES], description: 'Current step state' },
    handler: { type: 'string', description: 'Handler callable that runs the step' },
    dependencies: {
      type: 'array',
      items: { type: 'string' },
      description: 'Names of the steps it waits for',
    },
    attempts: { type: 'integer', description: 'Runs started so far, the first included' },
    max_attempts: { type: 'integer', description: 'Runs allowed in all' },
    retryable: { type: 'boolean', description: 'Whether a failed run may be retried' },
    ready: {
      type: 'boolean',
      description: 'Ready to run now (dependencies met, retry eligible, backoff over)',
    },
    dependencies_satisfied: { type: 'boolean', description: 'Every dependency is complete or resolved' },
    retry_eligible: { type: 'boolean', description: 'Attempts remain' },
    timeout_seconds: { type: ['integer', 'null'], description: 'Per-run timeout from the template' },
    next_retry_at: nullableTimestamp('When a retry is due, while waiting for one'),
    created_at: timestamp('Created'),
    updated_at: timestamp('Last changed'),
    last_attempted_at: nullableTimestamp('When the latest run started'),
    completed_at: nullableTimestamp('When the step finished (complete, cancelled or resolved)'),
    result: anyJson('What the handler returned (or the operator supplied); null until it succeeds'),
    error: anyJson(
      'The latest failure {message, error_type, retryable, attempt, ...}; kept after a later success; null if none',
    ),
  },
} as const;

export const stepListSchema = {
  type: 'object',
  required: ['steps'],
  properties: { steps: { type: 'array', items: stepViewSchema } },
} as const;

const taskFields = {
  task_uuid: uuidSchema('The task'),
  namespace: { type: 'string', description: 'Template namespace' },
  name: { type: 'string', description: 'Template name' },
  version: { type: 'string', description: 'Template version' },
  status: { type: 'string', enum: [...TASK_STATES], description: 'Current task state' },
  created_at: timestamp('Created'),
  updated_at: timestamp('Last changed'),
  completed_at: nullableTimestamp('When the task reached a terminal state'),
  initiator: nullableString('Who asked for the task'),
  source_system: nullableString('Which system asked'),
  reason: nullableString('Why'),
  priority: { type: 'integer', description: '-100..100' },
  tags: { type: 'array', items: { type: 'string' } },
  correlation_id: uuidSchema('Correlation id for tracing'),
} as const;

export const taskViewSchema = {
  type: 'object',
  description: 'A task with its execution context and steps',
  required: ['task_uuid', 'namespace', 'name', 'version', 'status', 'created_at', 'steps'],
  properties: {
    ...taskFields,
    context: { type: 'object', additionalProperties: true, description: 'The task input' },
    parent_correlation_id: { type: ['string', 'null'], format: 'uuid' },
    total_steps: { type: 'integer' },
    pending_steps: { type: 'integer' },
    in_progress_steps: {
      type: 'integer',
      description: 'Enqueued, running, or with a result not yet applied',
    },
    completed_steps: { type: 'integer', description: 'Complete or resolved manually' },
    failed_steps: { type: 'integer', description: 'In error' },
    ready_steps: { type: 'integer', description: 'Ready to run now' },
    execution_status: {
      type: 'string',
      enum: [
        'blocked_by_failures',
        'has_ready_steps',
        'processing',
        'all_complete',
        'waiting_for_dependencies',
      ],
    },
    recommended_action: {
      type: 'string',
      enum: [
        'handle_failures',
        'execute_ready_steps',
        'wait_for_completion',
        'finalize_task',
        'wait_for_dependencies',
      ],
    },
    completion_percentage: { type: 'number', description: '0..100, 2 decimals' },
    health_status: { type: 'string', enum: ['healthy', 'recovering', 'blocked', 'unknown'] },
    duration_ms: {
      type: ['integer', 'null'],
      description: 'created_at to completed_at in milliseconds, once the task is finished',
    },
    steps: { type: 'array', items: stepViewSchema },
    warnings: {
      type: 'array',
      description:
        'Only in GET /v1/tasks/{uuid} of an unfinished task, and only when something keeps it from making ' +
        'progress: `no_live_worker` when no worker has sent a heartbeat for its namespace in the last 30 s',
      items: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: ['no_live_worker'] },
          message: { type: 'string' },
          namespace: { type: 'string' },
        },
      },
    },
    steps_omitted: {
      type: 'integer',
      description:
        'Only in the answer to POST /v1/tasks for a task with more steps than it lists (the first 100 by uuid): ' +
        'how many were left out; GET /v1/tasks/{uuid}/workflow_steps lists them all',
    },
  },
} as const;

const taskSummarySchema = {
  type: 'object',
  required: ['task_uuid', 'namespace', 'name', 'version', 'status', 'created_at'],
  properties: {
    ...taskFields,
    total_steps: { type: 'integer' },
    completed_steps: { type: 'integer' },
    failed_steps: { type: 'integer' },
    completion_percentage: { type: 'number', description: '0..100, 2 decimals, as in the task view' },
  },
} as const;

const MAX_PER_PAGE = 100;
const MAX_PAGE = 1_000_000;

export const taskListQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    namespace: identifierSchema('Only tasks of this namespace'),
    name: identifierSchema('Only tasks of this template name'),
    status: {
      type: 'array',
      items: { type: 'string', enum: [...TASK_STATES] },
      maxItems: TASK_STATES.length,
      description: 'Only tasks in these states: repeat the parameter or separate with commas',
    },
    created_after: { type: 'string', format: 'date-time', description: 'Created at or after (ISO-8601)' },
    created_before: { type: 'string', format: 'date-time', description: 'Created before (ISO-8601)' },
    page: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 1, description: '1-based page number' },
    per_page: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_PER_PAGE,
      default: 25,
      description: `Tasks per page, 1..${MAX_PER_PAGE}`,
    },
  },
} as const;

export const taskListSchema = {
  type: 'object',
  required: ['tasks', 'pagination'],
  properties: {
    tasks: { type: 'array', items: taskSummarySchema, description: 'Newest first' },
    pagination: {
      type: 'object',
      required: ['page', 'per_page', 'total_count', 'total_pages', 'has_next', 'has_previous'],
      properties: {
        page: { type: 'integer' },
        per_page: { type: 'integer' },
        total_count: { type: 'integer', description: 'Tasks matching the filter' },
        total_pages: { type: 'integer' },
        has_next: { type: 'boolean' },
        has_previous: { type: 'boolean' },
      },
    },
  },
} as const;

/** The request body, documented from the zod schema parseTaskRequest validates with (one source of truth). */
export function taskRequestJsonSchema(): Record<string, unknown> {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(taskRequestSchema, {
    io: 'input',
    target: 'draft-7',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return { ...schema, description: 'A request to run a registered template (validated by the server)' };
}
