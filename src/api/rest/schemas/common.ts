/**
 * JSON-schema building blocks shared by the routes. The same schemas validate requests, serialize
 * responses and generate the OpenAPI document, so they are written for all three.
 */
import { UUID_EXAMPLE } from '../validation.ts';

export const timestamp = (description: string) =>
  ({ type: 'string', format: 'date-time', description }) as const;

export const nullableTimestamp = (description: string) =>
  ({ type: ['string', 'null'], format: 'date-time', description }) as const;

export const nullableString = (description: string) => ({ type: ['string', 'null'], description }) as const;

export const uuidSchema = (description: string) =>
  ({ type: 'string', format: 'uuid', description, example: UUID_EXAMPLE }) as const;

export const anyJson = (description: string) => ({ description }) as const;

const IDENTIFIER_PATTERN = '^[a-z_][a-z0-9_]{0,63}$';

const UUID_TEXT = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
/** A step UUID, or a step name as templates allow it (templateFields.ts: identifier, at most 128 characters). */
const STEP_REFERENCE_PATTERN = `^(?:${UUID_TEXT}|[a-z_][a-z0-9_]{0,127})$`;

/** True when a step reference (a `stepParams` value) is a UUID rather than a step name. */
export function isUuidText(value: string): boolean {
  return new RegExp(`^${UUID_TEXT}$`).test(value);
}

export const identifierSchema = (description: string) =>
  ({
    type: 'string',
    pattern: IDENTIFIER_PATTERN,
    description: `${description}: 1-64 lowercase letters, digits and underscores, not starting with a digit`,
  }) as const;

export const VERSION_PATTERN = '^\\d+\\.\\d+\\.\\d+(?:[-+][0-9A-Za-z.+-]{1,20})?$';

export const errorBodySchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          description: 'Stable error code (docs/errors.md)',
          example: 'TASKER_TASK_NOT_FOUND',
        },
        message: { type: 'string', description: 'What went wrong, where, and how to fix it' },
        details: {
          type: 'object',
          additionalProperties: true,
          description: 'Structured details; validation errors list `fields: [{field, location, message}]`',
        },
      },
    },
  },
} as const;

const STANDARD_ERRORS: Record<number, string> = {
  400: 'Invalid request: see `error.details.fields`',
  404: 'Not found',
  409: 'Conflicts with the current state',
  413: 'Request body too large',
  415: 'Request body is not JSON',
  500: 'Unexpected server error (message carries the request id)',
  503: 'Overloaded, timed out or database unavailable: retry after `Retry-After` seconds',
};

/** Error responses of a route: the given statuses plus 500 and 503, which any route can answer. */
export function errorResponses(
  ...statuses: (number | [number, string])[]
): Record<number, typeof errorBodySchema & { description: string }> {
  const responses: Record<number, typeof errorBodySchema & { description: string }> = {};
  for (const entry of [...statuses, 500, 503]) {
    const [status, description] = Array.isArray(entry) ? entry : [entry, STANDARD_ERRORS[entry] ?? 'Error'];
    responses[status] = { ...errorBodySchema, description };
  }
  return responses;
}

/** The query schema of a route that takes no query parameters: any is refused, not ignored. */
export const noQueryParameters = {
  type: 'object',
  additionalProperties: false,
  properties: {},
} as const;

export const taskUuidParams = {
  type: 'object',
  required: ['task_uuid'],
  additionalProperties: false,
  properties: { task_uuid: uuidSchema('The task') },
} as const;

export const stepParams = {
  type: 'object',
  required: ['task_uuid', 'step_uuid'],
  additionalProperties: false,
  properties: {
    task_uuid: uuidSchema('The task'),
    // A name cannot be mistaken for a UUID: step names have no `-`. Names are unique within a task
    // (workflow_steps_task_name_key), so either one names one step.
    step_uuid: {
      type: 'string',
      pattern: STEP_REFERENCE_PATTERN,
      description:
        'A step of that task: its UUID, or its name from the template (unique within the task), e.g. validate_order',
      example: UUID_EXAMPLE,
    },
  },
} as const;
