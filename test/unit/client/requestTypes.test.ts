/**
 * The client's request types are copies of the server's schemas (the client imports only domain/): these
 * checks fail, at compile time and at run time, when a copy and its source drift apart.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import type { StepActionBody } from '../../../src/api/rest/schemas/stepActionSchemas.ts';
import { stepActionBodySchema } from '../../../src/api/rest/schemas/stepActionSchemas.ts';
import type { StepActionRequest, TaskRequest } from '../../../src/client/taskerClient.ts';
import { taskRequestSchema } from '../../../src/orchestration/taskInitializer.ts';

// Every field of the client's TaskRequest, once: a missing or extra key is a compile error here.
const TASK_REQUEST_FIELDS: Record<keyof TaskRequest, true> = {
  name: true,
  namespace: true,
  version: true,
  context: true,
  initiator: true,
  source_system: true,
  reason: true,
  tags: true,
  priority: true,
  correlation_id: true,
  parent_correlation_id: true,
  idempotency_key: true,
  requested_at: true,
  options: true,
};

describe('client request types', () => {
  it('TaskRequest is what POST /v1/tasks accepts', () => {
    expectTypeOf<TaskRequest>().toEqualTypeOf<z.input<typeof taskRequestSchema>>();
    expect(Object.keys(TASK_REQUEST_FIELDS).sort()).toEqual(Object.keys(taskRequestSchema.shape).sort());
  });

  it('StepActionRequest is what PATCH .../workflow_steps/{step} accepts', () => {
    expectTypeOf<StepActionRequest>().toEqualTypeOf<StepActionBody>();
    const fields: Record<keyof StepActionRequest, true> = {
      action_type: true,
      reason: true,
      resolved_by: true,
      completion_data: true,
    };
    expect(Object.keys(fields).sort()).toEqual(Object.keys(stepActionBodySchema.properties).sort());
  });
});
