/**
 * The engine benchmark's workflows: no-op templates in namespace `bench`, written inline as YAML and parsed
 * by the real template parser, plus the one no-op handler every step runs. The worker process registers
 * the templates (Worker.start does); the bench process only needs their names.
 */
import type { TaskTemplate } from '../../src/domain/template/taskTemplate.ts';
import { parseTaskTemplate } from '../../src/domain/template/templateParser.ts';
import { defineHandler } from '../../src/worker/handlerApi.ts';
import type { StepHandlerDefinition } from '../../src/worker/handlerApi.ts';

export const BENCH_NAMESPACE = 'bench';
export const BENCH_VERSION = '1.0.0';
const NOOP_HANDLER = 'Bench.Noop';

/** A four-step chain: step_1 → step_2 → step_3 → step_4. */
const LINEAR_YAML = `
name: bench_linear
namespace_name: ${BENCH_NAMESPACE}
version: ${BENCH_VERSION}
description: Four no-op steps in a row
identity_strategy: always_unique
steps:
  - name: step_1
    handler: { callable: ${NOOP_HANDLER} }
  - name: step_2
    handler: { callable: ${NOOP_HANDLER} }
    dependencies: [step_1]
  - name: step_3
    handler: { callable: ${NOOP_HANDLER} }
    dependencies: [step_2]
  - name: step_4
    handler: { callable: ${NOOP_HANDLER} }
    dependencies: [step_3]
`;

/** A → (B, C) → D. */
const DIAMOND_YAML = `
name: bench_diamond
namespace_name: ${BENCH_NAMESPACE}
version: ${BENCH_VERSION}
description: Fan out to two no-op branches and join them
identity_strategy: always_unique
steps:
  - name: step_a
    handler: { callable: ${NOOP_HANDLER} }
  - name: step_b
    handler: { callable: ${NOOP_HANDLER} }
    dependencies: [step_a]
  - name: step_c
    handler: { callable: ${NOOP_HANDLER} }
    dependencies: [step_a]
  - name: step_d
    handler: { callable: ${NOOP_HANDLER} }
    dependencies: [step_b, step_c]
`;

const ONE_STEP_YAML = `
name: bench_one_step
namespace_name: ${BENCH_NAMESPACE}
version: ${BENCH_VERSION}
description: A single no-op step
identity_strategy: always_unique
steps:
  - name: only_step
    handler: { callable: ${NOOP_HANDLER} }
`;

export interface BenchWorkflow {
  /** The template name, as a task request names it. */
  name: string;
  steps: number;
}

export const LINEAR: BenchWorkflow = { name: 'bench_linear', steps: 4 };
export const DIAMOND: BenchWorkflow = { name: 'bench_diamond', steps: 4 };
export const ONE_STEP: BenchWorkflow = { name: 'bench_one_step', steps: 1 };

export function benchTemplates(): TaskTemplate[] {
  return [
    parseTaskTemplate(LINEAR_YAML, 'bench/engine/bench_linear.yaml'),
    parseTaskTemplate(DIAMOND_YAML, 'bench/engine/bench_diamond.yaml'),
    parseTaskTemplate(ONE_STEP_YAML, 'bench/engine/bench_one_step.yaml'),
  ];
}

/** Does nothing and returns nothing: what is measured is the engine around it. */
export const benchHandlers: readonly StepHandlerDefinition[] = [defineHandler(NOOP_HANDLER, () => null)];

/** A task request body for createTask. */
export function taskRequest(workflow: BenchWorkflow, seq: number): Record<string, unknown> {
  return {
    namespace: BENCH_NAMESPACE,
    name: workflow.name,
    version: BENCH_VERSION,
    context: { seq },
    initiator: 'engine-bench',
  };
}

/** The templates as YAML files' text by file name, for benchmarks that start a real `tasker worker`. */
export const BENCH_TEMPLATE_FILES: Readonly<Record<string, string>> = {
  'bench_linear.yaml': LINEAR_YAML,
  'bench_diamond.yaml': DIAMOND_YAML,
  'bench_one_step.yaml': ONE_STEP_YAML,
};
