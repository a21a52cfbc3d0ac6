/**
 * Typed runs over REST: `TaskerClient.run/start/runOf` against a real orchestration REST server (embedded, with a
 * worker serving typed workflows, on real PostgreSQL). Input is typed by the workflow, output by its `returns`;
 * a reference by label works without the workflow's code; failures and cancellations are typed errors.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { ServerAnswerError, TaskerClient, workflowReference, WorkflowRunError } from '../../../src/client.ts';
import { startTasker } from '../../../src/embed.ts';
import type { EmbeddedTasker } from '../../../src/embed.ts';
import { invoice, placeOrder, refuseOrder } from '../../fixtures/workflows/orderWorkflow.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const getDatabase = useTestDatabase();
let tasker: EmbeddedTasker;
let client: TaskerClient;

beforeAll(async () => {
  tasker = await startTasker({
    databaseUrl: getDatabase().url,
    migrate: true,
    listen: { rest: 0 },
    worker: { workflows: [placeOrder, refuseOrder] },
  });
  client = new TaskerClient(tasker.restUrl ?? '');
}, 60_000);
afterAll(async () => {
  client.close();
  await tasker.stop();
});

describe('typed workflow runs through the REST client', () => {
  it('runs a workflow and answers its declared output, typed', async () => {
    const output = await client.run(
      placeOrder,
      { sku: 'C3', quantity: 2, unitCents: 125 },
      { tags: ['typed'] },
    );
    expectTypeOf(output.invoice.total).toEqualTypeOf<number>();
    expectTypeOf(output.reserved).toEqualTypeOf<{ reservation: string }>();
    expect(output).toEqual({
      invoice: { number: 'INV-R-C3-2', total: 250, currency: 'EUR' },
      reserved: { reservation: 'R-C3-2' },
    });
  });

  it('follows a started run by its uuid, and reads the same output in-process', async () => {
    const run = await client.start(placeOrder, { sku: 'D4', quantity: 1, unitCents: 7 });
    const later = client.runOf(placeOrder, run.taskUuid);
    const [fromClient, fromEmbedding] = await Promise.all([
      later.result(),
      tasker.runOf(placeOrder, run.taskUuid).result(),
    ]);
    expect(fromClient).toEqual(fromEmbedding);
    const task = await run.get();
    expect(task.status).toBe('complete');
    expect(task.steps?.map((step) => step.name).sort()).toEqual(['invoice', 'price', 'reserve']);
    expect(task.tags).toEqual([]);
  });

  it('starts a workflow by reference, without its code', async () => {
    const byLabel = workflowReference<
      { sku: string; quantity: number; unitCents: number },
      { number: string; total: number; currency: string }
    >('typed_orders/place_order@1.0.0', invoice.name);
    const output = await client.run(byLabel, { sku: 'E5', quantity: 5, unitCents: 2 });
    expectTypeOf(output).toEqualTypeOf<{ number: string; total: number; currency: string }>();
    expect(output).toEqual({ number: 'INV-R-E5-5', total: 10, currency: 'EUR' });
    expect(() => workflowReference('typed_orders/place_order')).toThrow(/not namespace\/name@version/);
  });

  it('answers a failed task with a WorkflowRunError naming the step and its error', async () => {
    const error = await client.run(refuseOrder, {}).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WorkflowRunError);
    expect(error).toMatchObject({
      code: 'TASKER_TASK_FAILED',
      status: 'error',
      failedSteps: [expect.objectContaining({ name: 'check' })],
    });
    expect((error as Error).message).toContain('sku BANNED cannot be sold');
  });

  it('refuses input the template schema refuses, and cancelling a finished run is the server answer', async () => {
    const invalid = await client
      // @ts-expect-error unitCents is required by the workflow's input schema
      .run(placeOrder, { sku: 'F6', quantity: 1 })
      .catch((caught: unknown) => caught);
    expect(invalid).toBeInstanceOf(ServerAnswerError);
    expect(invalid).toMatchObject({ status: 400, code: 'TASKER_INVALID_CONTEXT' });

    const run = await client.start(placeOrder, { sku: 'G7', quantity: 1, unitCents: 1 });
    await run.result();
    await expect(run.cancel()).rejects.toMatchObject({ status: 409, code: 'TASKER_TASK_TERMINAL' });
  });
});
