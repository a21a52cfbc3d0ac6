/**
 * A step sees the results of every ancestor, however deep: in a 130-step chain the last step reads the first
 * step's result (the ancestor walk used to stop at 100 levels and leave the handler a silent partial set).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTasker } from '../../../src/testing.ts';
import type { TestTasker } from '../../../src/testing.ts';
import { workflow } from '../../../src/worker/workflow.ts';
import type { WorkflowStep } from '../../../src/worker/workflow.ts';

const LENGTH = 130;

const chain = workflow({
  namespace: 'deep',
  name: 'long_chain',
  version: '1.0.0',
  identity: 'always_unique',
});
let previous: WorkflowStep<string, { index: number }> | undefined;
let first: WorkflowStep<string, { index: number }> | undefined;
for (let index = 0; index < LENGTH - 1; index++) {
  const step: WorkflowStep<string, { index: number }> = chain.step(`c${index}`, {
    ...(previous !== undefined && { parents: [previous] }),
    run: () => ({ index }),
  });
  first ??= step;
  previous = step;
}
const last = chain.step('last', {
  parents: [previous as WorkflowStep<string, { index: number }>],
  run: (ctx) => ({
    first: ctx.dependency<{ index: number }>((first as WorkflowStep).name).index,
    seen: Object.keys(ctx.dependencyResults).length,
  }),
});
const longChain = chain.returns(last);

describe(`a ${LENGTH}-step chain`, () => {
  let env: TestTasker;
  beforeAll(async () => {
    env = await createTestTasker({ workflows: [longChain], waitMs: 120_000 });
  }, 60_000);
  afterAll(() => env.stop());

  it('hands the last step the result of every ancestor, the first included', async () => {
    expect(await env.run(longChain, {})).toEqual({ first: 0, seen: LENGTH - 1 });
  }, 150_000);
});
