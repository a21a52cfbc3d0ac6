import type { FastifyInstance } from 'fastify';
import { listTemplateVersions } from '../../../db/queries/findTemplate.ts';
import { getRegisteredTemplate, listTemplates } from '../../../db/queries/templateList.ts';
import { NotFoundError } from '../../../domain/errors.ts';
import type { TaskTemplate } from '../../../domain/template/taskTemplate.ts';
import type { RestContext } from '../restContext.ts';
import {
  anyJson,
  errorResponses,
  identifierSchema,
  nullableString,
  timestamp,
  VERSION_PATTERN,
} from '../schemas/common.ts';
import { iso } from '../views.ts';

const templateSummarySchema = {
  type: 'object',
  required: ['namespace', 'name', 'version', 'step_count', 'identity_strategy', 'registered_at'],
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    description: nullableString('What the workflow does'),
    step_count: { type: 'integer' },
    identity_strategy: { type: 'string', enum: ['strict', 'caller_provided', 'always_unique'] },
    registered_at: timestamp('First registered'),
    updated_at: timestamp('Last re-registered'),
  },
} as const;

const nullableInteger = { type: ['integer', 'null'] } as const;

const templateSchema = {
  type: 'object',
  required: ['namespace', 'name', 'version', 'identity_strategy', 'steps'],
  properties: {
    ...templateSummarySchema.properties,
    input_schema: {
      type: ['object', 'null'],
      additionalProperties: true,
      description: 'JSON Schema the task context must satisfy; null accepts any object',
    },
    lifecycle: {
      type: 'object',
      properties: {
        max_duration_minutes: nullableInteger,
        max_waiting_for_dependencies_minutes: nullableInteger,
        max_waiting_for_retry_minutes: nullableInteger,
        max_steps_in_process_minutes: nullableInteger,
      },
    },
    metadata: { type: 'object', additionalProperties: true },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'handler', 'dependencies', 'retry'],
        properties: {
          name: { type: 'string' },
          description: nullableString('What the step does'),
          handler: {
            type: 'object',
            properties: {
              callable: { type: 'string', description: 'Registered handler name' },
              initialization: anyJson('Static configuration handed to the handler as ctx.config'),
            },
          },
          dependencies: { type: 'array', items: { type: 'string' } },
          retry: {
            type: 'object',
            properties: {
              retryable: { type: 'boolean' },
              max_attempts: { type: 'integer' },
              backoff: { type: 'string', enum: ['exponential', 'linear', 'fixed'] },
              backoff_base_ms: { type: 'integer' },
              max_backoff_ms: { type: 'integer' },
            },
          },
          timeout_seconds: { type: ['integer', 'null'] },
        },
      },
    },
  },
} as const;

function templateView(template: TaskTemplate, registeredAt: Date, updatedAt: Date) {
  return {
    namespace: template.namespace,
    name: template.name,
    version: template.version,
    description: template.description,
    step_count: template.steps.length,
    identity_strategy: template.identityStrategy,
    registered_at: iso(registeredAt),
    updated_at: iso(updatedAt),
    input_schema: template.inputSchema,
    lifecycle: {
      max_duration_minutes: template.lifecycle.maxDurationMinutes,
      max_waiting_for_dependencies_minutes: template.lifecycle.maxWaitingForDependenciesMinutes,
      max_waiting_for_retry_minutes: template.lifecycle.maxWaitingForRetryMinutes,
      max_steps_in_process_minutes: template.lifecycle.maxStepsInProcessMinutes,
    },
    metadata: template.metadata,
    steps: template.steps.map((step) => ({
      name: step.name,
      description: step.description,
      handler: { callable: step.handler.callable, initialization: step.handler.initialization },
      dependencies: step.dependencies,
      retry: {
        retryable: step.retry.retryable,
        max_attempts: step.retry.maxAttempts,
        backoff: step.retry.backoff,
        backoff_base_ms: step.retry.backoffBaseMs,
        max_backoff_ms: step.retry.maxBackoffMs,
      },
      timeout_seconds: step.timeoutSeconds,
    })),
  };
}

interface TemplateParams {
  namespace: string;
  name: string;
  version: string;
}

export function registerTemplateRoutes(app: FastifyInstance, ctx: RestContext): void {
  app.get<{ Querystring: { namespace?: string } }>(
    '/v1/templates',
    {
      config: { access: { permission: 'templates:read' } },
      schema: {
        tags: ['templates'],
        summary: 'List registered templates',
        description: 'Templates are registered by the workers that serve them.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { namespace: identifierSchema('Only templates of this namespace') },
        },
        response: {
          200: {
            type: 'object',
            required: ['templates'],
            properties: { templates: { type: 'array', items: templateSummarySchema } },
          },
          ...errorResponses(400),
        },
      },
    },
    async (request) => {
      const rows = await listTemplates(ctx.db, request.query.namespace);
      return {
        templates: rows.map((row) => ({
          ...row,
          registered_at: iso(row.registered_at),
          updated_at: iso(row.updated_at),
        })),
      };
    },
  );

  app.get<{ Params: TemplateParams }>(
    '/v1/templates/:namespace/:name/:version',
    {
      config: { access: { permission: 'templates:read' } },
      schema: {
        tags: ['templates'],
        summary: 'Get a registered template',
        description: 'Steps with handler, dependencies, retry and timeout, and the input_schema.',
        params: {
          type: 'object',
          required: ['namespace', 'name', 'version'],
          additionalProperties: false,
          properties: {
            namespace: identifierSchema('Template namespace'),
            name: identifierSchema('Template name'),
            version: {
              type: 'string',
              pattern: VERSION_PATTERN,
              maxLength: 32,
              description: 'Semantic version such as 1.0.0',
            },
          },
        },
        response: {
          200: templateSchema,
          ...errorResponses(400, [404, 'Not registered; lists registered versions']),
        },
      },
    },
    async (request) => {
      const { namespace, name, version } = request.params;
      const found = await getRegisteredTemplate(ctx.db, namespace, name, version);
      if (found === undefined) {
        const versions = await listTemplateVersions(ctx.db, namespace, name);
        throw new NotFoundError(
          'TASKER_TEMPLATE_NOT_FOUND',
          `no template ${namespace}/${name} version ${version} is registered` +
            (versions.length > 0
              ? `; registered versions: ${versions.join(', ')}`
              : '; GET /v1/templates lists what is registered (workers register the templates they serve)'),
          { details: { namespace, name, version, versions } },
        );
      }
      return templateView(found.template, found.registeredAt, found.updatedAt);
    },
  );
}
