import type { FastifyInstance } from 'fastify';
import { applyStepAction } from '../../../db/queries/stepActions.ts';
import type { StepAction } from '../../../db/queries/stepActions.ts';
import { getStepView, listStepViews } from '../../../db/queries/stepViews.ts';
import { NotFoundError } from '../../../domain/errors.ts';
import { ApiError } from '../apiError.ts';
import type { RestContext } from '../restContext.ts';
import { errorResponses, isUuidText, stepParams, taskUuidParams } from '../schemas/common.ts';
import { stepActionBodySchema } from '../schemas/stepActionSchemas.ts';
import type { StepActionBody } from '../schemas/stepActionSchemas.ts';
import { stepListSchema, stepViewSchema } from '../schemas/taskSchemas.ts';
import { stepView } from '../views.ts';
import { taskNotFound } from './taskRoutes.ts';

interface StepParams {
  task_uuid: string;
  step_uuid: string;
}

function stepNotFound(taskUuid: string, stepRef: string): NotFoundError {
  return new NotFoundError(
    'TASKER_STEP_NOT_FOUND',
    `task ${taskUuid} has no step ${stepRef}; GET /v1/tasks/${taskUuid}/workflow_steps lists its steps`,
    { details: { task_uuid: taskUuid, [isUuidText(stepRef) ? 'step_uuid' : 'step_name']: stepRef } },
  );
}

/** `stepRef` is the step's UUID or its name (see stepParams). */
async function readStep(ctx: RestContext, taskUuid: string, stepRef: string) {
  const { taskExists, step } = await getStepView(
    ctx.db,
    taskUuid,
    stepRef,
    isUuidText(stepRef) ? 'uuid' : 'name',
  );
  if (!taskExists) throw taskNotFound(taskUuid);
  if (step === undefined) throw stepNotFound(taskUuid, stepRef);
  return stepView(step);
}

function toStepAction(body: StepActionBody): StepAction {
  const audit = {
    ...(body.resolved_by !== undefined && { operator: body.resolved_by }),
    ...(body.reason !== undefined && { reason: body.reason }),
  };
  if (body.action_type === 'complete_manually') {
    if (body.completion_data === undefined) {
      throw new ApiError(
        400,
        'TASKER_INVALID_REQUEST',
        'invalid request body: completion_data is required for complete_manually: send {"completion_data": {"result": ...}}',
        {
          details: {
            fields: [
              { field: 'completion_data', location: 'body', message: 'is required for complete_manually' },
            ],
          },
        },
      );
    }
    return {
      action: 'complete_manually',
      result: body.completion_data.result,
      ...(body.completion_data.metadata !== undefined && { metadata: body.completion_data.metadata }),
      ...audit,
    };
  }
  if (body.completion_data !== undefined) {
    throw new ApiError(
      400,
      'TASKER_INVALID_REQUEST',
      `invalid request body: completion_data is only allowed with action_type complete_manually, not ${body.action_type}; remove it`,
      {
        details: {
          fields: [
            { field: 'completion_data', location: 'body', message: 'is only allowed for complete_manually' },
          ],
        },
      },
    );
  }
  return { action: body.action_type, ...audit };
}

export function registerStepRoutes(app: FastifyInstance, ctx: RestContext): void {
  app.get<{ Params: { task_uuid: string } }>(
    '/v1/tasks/:task_uuid/workflow_steps',
    {
      config: { access: { permission: 'steps:read' } },
      schema: {
        tags: ['steps'],
        summary: "List a task's steps",
        description: 'Every step of the task in creation order, with readiness, results and errors.',
        params: taskUuidParams,
        response: { 200: stepListSchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const steps = await listStepViews(ctx.db, request.params.task_uuid);
      if (steps === undefined) throw taskNotFound(request.params.task_uuid);
      return { steps: steps.map(stepView) };
    },
  );

  app.get<{ Params: StepParams }>(
    '/v1/tasks/:task_uuid/workflow_steps/:step_uuid',
    {
      config: { access: { permission: 'steps:read' } },
      schema: {
        tags: ['steps'],
        summary: 'Get a step',
        params: stepParams,
        response: {
          200: stepViewSchema,
          ...errorResponses(400, [404, 'No such task, or the step is not in it']),
        },
      },
    },
    async (request) => readStep(ctx, request.params.task_uuid, request.params.step_uuid),
  );

  app.patch<{ Params: StepParams; Body: StepActionBody }>(
    '/v1/tasks/:task_uuid/workflow_steps/:step_uuid',
    {
      config: { access: { permission: 'steps:resolve' } },
      schema: {
        tags: ['steps'],
        summary: 'Act on a step (operator)',
        description:
          'reset_for_retry, resolve_manually or complete_manually. The task carries on from there, even if it ' +
          'had failed.',
        params: stepParams,
        body: stepActionBodySchema,
        response: {
          200: { ...stepViewSchema, description: 'The step after the action' },
          ...errorResponses(
            400,
            [404, 'No such task, or the step is not in it'],
            [409, 'The action is not allowed in the step’s current state'],
            413,
            415,
          ),
        },
      },
    },
    async (request) => {
      const { task_uuid: taskUuid, step_uuid: stepRef } = request.params;
      const action = toStepAction(request.body);
      // A name is resolved to its UUID first (404 when the task has no such step); names never change, so
      // the UUID read here is the step the action then applies to.
      const stepUuid = isUuidText(stepRef) ? stepRef : (await readStep(ctx, taskUuid, stepRef)).step_uuid;
      await applyStepAction(ctx.db, taskUuid, stepUuid, action, ctx.processorUuid);
      return readStep(ctx, taskUuid, stepUuid);
    },
  );
}
