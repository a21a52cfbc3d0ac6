const STEP_ACTION_TYPES = ['reset_for_retry', 'resolve_manually', 'complete_manually'] as const;
type StepActionType = (typeof STEP_ACTION_TYPES)[number];

export interface StepActionBody {
  action_type: StepActionType;
  reason?: string;
  resolved_by?: string;
  completion_data?: { result: unknown; metadata?: Record<string, unknown> };
}

export const stepActionBodySchema = {
  type: 'object',
  description:
    'An operator action on a step. reset_for_retry: a failed step runs again with its attempts reset; ' +
    'resolve_manually: the step counts as done (dependents run) without a result; complete_manually: the ' +
    'step is complete with `completion_data.result`, which dependents see as its result. ' +
    '`completion_data` is required for complete_manually and refused otherwise. A task in error is revived.',
  required: ['action_type'],
  additionalProperties: false,
  properties: {
    action_type: { type: 'string', enum: [...STEP_ACTION_TYPES], description: 'What to do' },
    reason: { type: 'string', minLength: 1, maxLength: 500, description: 'Why (kept in the audit trail)' },
    resolved_by: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      description: 'Who (kept in the audit trail)',
    },
    completion_data: {
      type: 'object',
      required: ['result'],
      additionalProperties: false,
      properties: {
        result: { description: 'The step result dependents will see (any JSON)' },
        metadata: { type: 'object', additionalProperties: true, description: 'Extra audit data' },
      },
    },
  },
} as const;
