/**
 * The TaskerClient against a real orchestration REST server, with an in-process orchestrator and worker on a
 * real database (test/integration/api/apiHarness.ts): the calls the CLI makes, typed results, and the
 * server's error answers as typed errors.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { DuplicateTaskError, ServerAnswerError, TaskerClient } from '../../../src/client/taskerClient.ts';
import type { TaskView } from '../../../src/client/taskerClient.ts';
import { apiHandlers, apiTemplates } from '../api/apiFixtures.ts';
import { useApi } from '../api/apiHarness.ts';

const getApi = useApi({ handlers: apiHandlers, templates: apiTemplates() });

// Type aliases, not interfaces: an interface has no implicit index signature, so it is not a JsonObject.
type DiamondInput = { n: number };
type DiamondResults = {
  diamond_start: { value: number };
  diamond_branch_b: { value: number };
  diamond_branch_c: { value: number };
  diamond_end: { value: number };
};

let client: TaskerClient;
let connections = 0;
beforeAll(() => {
  client = new TaskerClient(getApi().url);
  getApi().app.server.on('connection', () => connections++);
});
afterAll(() => client.close());

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );
}

describe('TaskerClient against an orchestration server', () => {
  it('creates a task and waits for its typed results with the long poll', async () => {
    const created = await client.createTask<DiamondInput, DiamondResults>({
      namespace: 'math',
      name: 'diamond_pattern',
      version: '1.0.0',
      context: { n: 3 },
      initiator: 'client-test',
      tags: ['client'],
      priority: 5,
    });
    expect(created).toMatchObject({ namespace: 'math', name: 'diamond_pattern', initiator: 'client-test' });
    expectTypeOf(created.context).toEqualTypeOf<DiamondInput | undefined>();

    const finished = await client.waitForTask<DiamondInput, DiamondResults>(created.task_uuid, {
      waitMs: 20_000,
    });
    expect(finished.status).toBe('complete');
    expect(finished.context).toEqual({ n: 3 });
    const end = finished.steps?.find((step) => step.name === 'diamond_end');
    if (end?.name === 'diamond_end') {
      expectTypeOf(end.result).toEqualTypeOf<{ value: number } | null | undefined>();
    }
    expect(end?.result).toEqual({ value: 45 });
  });

  it('creates and awaits in one request with waitSeconds', async () => {
    const finished = await client.createTask(
      { namespace: 'math', name: 'diamond_pattern', version: '1.0.0', context: { n: 2 } },
      { waitSeconds: 20 },
    );
    expect(finished.status).toBe('complete');
    expect(finished.steps?.map((s) => s.status)).toEqual(Array(4).fill('complete'));
  });

  it('lists tasks with filters the way the CLI passes them', async () => {
    const page = await client.listTasks({
      namespace: 'math',
      status: ['complete', 'error'],
      page: '1',
      per_page: 2,
    });
    expect(page.tasks.length).toBeGreaterThan(0);
    expect(page.tasks.length).toBeLessThanOrEqual(2);
    for (const task of page.tasks) expect(['complete', 'error']).toContain(task.status);
    expect(page.pagination).toMatchObject({ page: 1, per_page: 2 });
  });

  it('cancels a task; cancelling it again is a 409 with the server code', async () => {
    const task = await client.createTask({
      namespace: 'math',
      name: 'slow_sequence',
      version: '1.0.0',
      context: { n: 1, ms: 5_000 },
    });
    const cancelled = await client.cancelTask(task.task_uuid);
    expect(cancelled.status).toBe('cancelled');
    const again = await failure(client.cancelTask(task.task_uuid));
    expect(again).toBeInstanceOf(ServerAnswerError);
    expect(again).toMatchObject({ status: 409, code: 'TASKER_TASK_TERMINAL', attempts: 1, method: 'DELETE' });
    expect((again as ServerAnswerError).requestId).toEqual(expect.any(String));
  });

  it('answers a duplicate creation with DuplicateTaskError (409 TASKER_DUPLICATE_TASK)', async () => {
    const request = {
      namespace: 'api_ops',
      name: 'keyed_echo',
      version: '1.0.0',
      idempotency_key: `k-${Date.now()}`,
    };
    const first = await client.createTask(request);
    expect(first.task_uuid).toEqual(expect.any(String));
    const duplicate = await failure(client.createTask(request));
    expect(duplicate).toBeInstanceOf(DuplicateTaskError);
    // The first attempt of this call was answered, so the existing task is not its own doing.
    expect(duplicate).toMatchObject({
      status: 409,
      code: 'TASKER_DUPLICATE_TASK',
      mayBeOwnEarlierAttempt: false,
    });
  });

  it('reads steps and acts on one, and reports the server validation and not-found errors', async () => {
    const task: TaskView = await client.createTask(
      { namespace: 'api_ops', name: 'operator_fix', version: '1.0.0' },
      { waitSeconds: 20 },
    );
    expect(task.status).toBe('error');
    const { steps } = await client.listSteps(task.task_uuid);
    const gate = steps.find((s) => s.name === 'gate');
    expect(gate?.status).toBe('error');
    const resolved = await client.stepAction(task.task_uuid, gate?.step_uuid ?? '', {
      action_type: 'complete_manually',
      completion_data: { result: { opened: true } },
      reason: 'client test',
    });
    expect(resolved.status).toBe('complete');
    expect((await client.getStep(task.task_uuid, resolved.step_uuid)).result).toEqual({ opened: true });
    expect((await client.waitForTask(task.task_uuid, { waitMs: 20_000 })).status).toBe('complete');

    const missing = await failure(client.getTask('0196a1f2-0000-7000-8000-000000000000'));
    expect(missing).toMatchObject({ status: 404, code: 'TASKER_TASK_NOT_FOUND' });
    const invalid = await failure(
      client.createTask({ name: 'diamond_pattern', namespace: 'math', priority: 1000 }),
    );
    expect(invalid).toMatchObject({ status: 400, code: 'TASKER_INVALID_TASK_REQUEST' });
  });

  it('reuses its keep-alive connection across calls', async () => {
    const own = new TaskerClient(getApi().url);
    try {
      const before = connections;
      for (let i = 0; i < 10; i++) await own.listTasks({ per_page: 1 });
      expect(connections - before).toBe(1);
    } finally {
      own.close();
    }
  });
});
