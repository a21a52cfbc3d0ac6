/**
 * Templates and handlers the API tests add to the examples: identity strategies the examples do not use,
 * and a step that fails for good until the test "fixes the outside world", so operator actions can be shown
 * to bring a failed task back.
 */
import exampleHandlers from '../../../examples/handlers/index.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { defineHandler, PermanentError } from '../../../src/worker/handlerApi.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';

/** Tasks whose gate step succeeds from now on. */
export const openGates = new Set<string>();

const OPERATOR_FIX = `
name: operator_fix
namespace_name: api_ops
version: 1.0.0
description: A gate that fails until the outside world is fixed, then a step that uses its result
identity_strategy: always_unique
steps:
  - name: gate
    handler: { callable: Api.Gate }
    retry: { retryable: false, max_attempts: 1 }
  - name: after_gate
    handler: { callable: Resilience.Echo, initialization: { from: gate } }
    dependencies: [gate]
`;

const KEYED = `
name: keyed_echo
namespace_name: api_ops
version: 1.0.0
description: Needs an idempotency_key
identity_strategy: caller_provided
steps:
  - name: echo
    handler: { callable: Resilience.Echo, initialization: { value: keyed } }
`;

const STRICT = `
name: strict_echo
namespace_name: api_ops
version: 1.0.0
description: Deduplicated by context
identity_strategy: strict
steps:
  - name: echo
    handler: { callable: Resilience.Echo, initialization: { value: strict } }
`;

const STRICT_V2 = STRICT.replace('version: 1.0.0', 'version: 2.0.0');

export function apiTemplates(): TaskTemplate[] {
  return [
    ...exampleTemplates(),
    parseTaskTemplate(OPERATOR_FIX, 'operator_fix.yaml'),
    parseTaskTemplate(KEYED, 'keyed_echo.yaml'),
    parseTaskTemplate(STRICT, 'strict_echo.yaml'),
    parseTaskTemplate(STRICT_V2, 'strict_echo_v2.yaml'),
  ];
}

export const apiHandlers = [
  ...exampleHandlers,
  defineHandler('Api.Gate', (ctx) => {
    if (!openGates.has(ctx.taskUuid)) {
      throw new PermanentError('the gate is closed: the downstream system refused the request', {
        code: 'GATE_CLOSED',
      });
    }
    return { opened: true, attempt: ctx.attempt };
  }),
];
