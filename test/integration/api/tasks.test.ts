/**
 * POST/GET/DELETE /v1/tasks over real HTTP with an orchestrator and a worker running: every example workflow
 * runs to its end and shows its data; identity, validation and lookup errors; listing with filters and
 * pagination; cancellation.
 */
import { describe, expect, it } from 'vitest';
import { TaskCompletionWaiter } from '../../../src/api/rest/taskCompletionWaiter.ts';
import { buildRestServer } from '../../../src/api/rest/server.ts';
import { NotificationListener } from '../../../src/messaging/pgmq/notificationListener.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';
import { listenLocally, TERMINAL, useApi } from './apiHarness.ts';
import { apiHandlers, apiTemplates } from './apiFixtures.ts';
import { resultsByName, stepNamed } from './viewTypes.ts';
import type { ErrorBody, TaskList, TaskView } from './viewTypes.ts';

const getApi = useApi({ handlers: apiHandlers, templates: apiTemplates() });

interface Scenario {
  template: string;
  namespace: string;
  context: Record<string, unknown>;
  status: 'complete' | 'error';
  results?: Record<string, unknown>;
  check?: (view: TaskView) => void;
}

const value = (v: number) => ({ value: v });

const SCENARIOS: Scenario[] = [
  {
    template: 'mathematical_sequence',
    namespace: 'math',
    context: { even_number: 2 },
    status: 'complete',
    results: {
      linear_step_1: value(4),
      linear_step_2: value(16),
      linear_step_3: value(256),
      linear_step_4: value(65536),
    },
  },
  {
    template: 'diamond_pattern',
    namespace: 'math',
    context: { n: 3 },
    status: 'complete',
    results: {
      diamond_start: value(9),
      diamond_branch_b: value(18),
      diamond_branch_c: value(27),
      diamond_end: value(45),
    },
  },
  {
    template: 'hierarchical_tree',
    namespace: 'math',
    context: { n: 1 },
    status: 'complete',
    results: {
      tree_root: value(1),
      tree_left: value(2),
      tree_right: value(3),
      tree_left_a: value(3),
      tree_left_b: value(4),
      tree_right_a: value(4),
      tree_right_b: value(5),
      tree_final: value(16),
    },
  },
  {
    template: 'complex_dag',
    namespace: 'math',
    context: { n: 2 },
    status: 'complete',
    results: {
      dag_init: value(2),
      dag_process_left: value(4),
      dag_process_right: value(6),
      dag_validate: value(10),
      dag_transform: value(40),
      dag_analyze: value(60),
      dag_finalize: value(110),
    },
  },
  {
    template: 'slow_sequence',
    namespace: 'math',
    context: { n: 5, ms: 10 },
    status: 'complete',
    results: { slow_fetch: value(6), slow_transform: value(7), slow_store: value(8) },
  },
  {
    template: 'retry_then_succeed',
    namespace: 'resilience',
    context: {},
    status: 'complete',
    results: {
      flaky_step: { succeeded_on_attempt: 3 },
      after_flaky: { echoed: { succeeded_on_attempt: 3 } },
    },
    check: (view) => {
      const flaky = stepNamed(view, 'flaky_step');
      expect(flaky.attempts).toBe(3);
      // The last failure stays visible after the success that followed it.
      expect(flaky.error).toMatchObject({ message: 'simulated outage on attempt 2 of 5', retryable: true });
    },
  },
  {
    template: 'permanent_error',
    namespace: 'resilience',
    context: {},
    status: 'error',
    check: (view) => {
      const step = stepNamed(view, 'rejecting_step');
      expect(step).toMatchObject({ status: 'error', attempts: 1, result: null });
      expect(step.error).toMatchObject({
        message: 'the request is invalid and will never succeed',
        retryable: false,
        code: 'INVALID_REQUEST',
      });
      expect(view).toMatchObject({
        failed_steps: 1,
        execution_status: 'blocked_by_failures',
        recommended_action: 'handle_failures',
        health_status: 'blocked',
      });
    },
  },
  {
    template: 'always_fails',
    namespace: 'resilience',
    context: {},
    status: 'error',
    check: (view) => {
      expect(stepNamed(view, 'doomed_step')).toMatchObject({ status: 'error', attempts: 3 });
      expect(stepNamed(view, 'doomed_step').error?.message).toBe('still failing on attempt 3');
      expect(stepNamed(view, 'never_runs')).toMatchObject({ status: 'pending', attempts: 0, result: null });
    },
  },
  {
    template: 'mixed_outcomes',
    namespace: 'resilience',
    context: {},
    status: 'error',
    check: (view) => {
      expect(stepNamed(view, 'succeeding_step')).toMatchObject({
        status: 'complete',
        result: { value: 'ok' },
      });
      expect(stepNamed(view, 'permanent_step')).toMatchObject({ status: 'error', attempts: 1 });
    },
  },
];

describe('POST /v1/tasks then GET until done, for every example workflow', () => {
  it('covers every template in examples/templates', () => {
    expect(SCENARIOS.map((s) => s.template).sort()).toEqual(
      exampleTemplates()
        .map((t) => t.name)
        .sort(),
    );
  });

  it.each(SCENARIOS)('$template ends $status with its data', async (scenario) => {
    const api = getApi();
    const created = await api.post<TaskView>('/v1/tasks', {
      namespace: scenario.namespace,
      name: scenario.template,
      version: '1.0.0',
      context: scenario.context,
      initiator: 'api-test',
      source_system: 'vitest',
      reason: 'example run',
      tags: ['api', scenario.template],
      priority: 7,
    });
    expect(created.status, created.text).toBe(201);
    const task = created.body;
    expect(created.headers.get('location')).toBe(`/v1/tasks/${task.task_uuid}`);
    expect(task).toMatchObject({
      namespace: scenario.namespace,
      name: scenario.template,
      version: '1.0.0',
      context: scenario.context,
      initiator: 'api-test',
      source_system: 'vitest',
      reason: 'example run',
      tags: ['api', scenario.template],
      priority: 7,
      completed_at: null,
      duration_ms: null,
    });
    const template = apiTemplates().find((t) => t.name === scenario.template);
    expect(task.total_steps).toBe(template?.steps.length);
    expect(task.steps.map((s) => s.name).sort()).toEqual(template?.steps.map((s) => s.name).sort());
    for (const step of template?.steps ?? []) {
      expect(stepNamed(task, step.name).dependencies).toEqual([...step.dependencies].sort());
    }
    // The counters add up, whatever progress the worker already made.
    expect(
      task.pending_steps + task.in_progress_steps + task.completed_steps + task.failed_steps,
    ).toBeLessThanOrEqual(task.total_steps);

    const done = await api.waitForStatus<TaskView>(task.task_uuid, TERMINAL);
    expect(done.status).toBe(scenario.status);
    expect(Date.parse(done.completed_at ?? '')).toBeGreaterThanOrEqual(Date.parse(done.created_at));
    expect(done.duration_ms).toBe(Date.parse(done.completed_at ?? '') - Date.parse(done.created_at));
    if (scenario.status === 'complete') {
      expect(done).toMatchObject({
        completed_steps: done.total_steps,
        completion_percentage: 100,
        execution_status: 'all_complete',
        health_status: 'healthy',
        failed_steps: 0,
        ready_steps: 0,
      });
      for (const step of done.steps) {
        expect(step.status).toBe('complete');
        expect(step.completed_at).not.toBeNull();
        expect(step.last_attempted_at).not.toBeNull();
      }
    }
    if (scenario.results !== undefined) expect(resultsByName(done)).toEqual(scenario.results);
    scenario.check?.(done);
  });

  it('answers the created task as GET shows it: same fields, real step uuids', async () => {
    const api = getApi();
    const created = await api.post<TaskView>('/v1/tasks', {
      namespace: 'math',
      name: 'slow_sequence',
      version: '1.0.0',
      context: { n: 1, ms: 50 },
    });
    expect(created.status).toBe(201);
    const fetched = await api.get<TaskView>(`/v1/tasks/${created.body.task_uuid}`);
    expect(Object.keys(created.body).sort()).toEqual(Object.keys(fetched.body).sort());
    expect(created.body.steps.map((s) => s.step_uuid)).toEqual(fetched.body.steps.map((s) => s.step_uuid));
    expect(Object.keys(created.body.steps[0] ?? {}).sort()).toEqual(
      Object.keys(fetched.body.steps[0] ?? {}).sort(),
    );
    expect(created.body.created_at).toBe(fetched.body.created_at);
    expect(created.body.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
    // The first step is on its way, the others wait for it: nothing is ready to enqueue.
    expect(stepNamed(created.body, 'slow_transform')).toMatchObject({ status: 'pending', ready: false });
    expect(created.body.ready_steps).toBe(0);
    await api.waitForStatus(created.body.task_uuid, TERMINAL);
  });

  it('keeps correlation ids and tags given by the caller', async () => {
    const api = getApi();
    const correlation = '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6a';
    const parent = '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6b';
    const created = await api.post<TaskView>('/v1/tasks', {
      namespace: 'math',
      name: 'diamond_pattern',
      version: '1.0.0',
      context: { n: 2 },
      correlation_id: correlation,
      parent_correlation_id: parent,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ correlation_id: correlation, parent_correlation_id: parent });
  });
});

describe('POST /v1/tasks refusals', () => {
  it('409 TASKER_DUPLICATE_TASK for the same idempotency_key, without revealing the existing task', async () => {
    const api = getApi();
    const body = { namespace: 'api_ops', name: 'keyed_echo', version: '1.0.0', idempotency_key: 'order-42' };
    const first = await api.post<TaskView>('/v1/tasks', body);
    expect(first.status).toBe(201);
    const second = await api.post<ErrorBody>('/v1/tasks', body);
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('TASKER_DUPLICATE_TASK');
    expect(second.text).not.toContain(first.body.task_uuid);
  });

  it('409 for the same context under a strict template, 201 for another context', async () => {
    const api = getApi();
    const body = { namespace: 'api_ops', name: 'strict_echo', version: '1.0.0', context: { order: 1 } };
    expect((await api.post('/v1/tasks', body)).status).toBe(201);
    const again = await api.post<ErrorBody>('/v1/tasks', body);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain('same context');
    expect((await api.post('/v1/tasks', { ...body, context: { order: 2 } })).status).toBe(201);
  });

  it('400 TASKER_IDEMPOTENCY_KEY_REQUIRED for a caller_provided template without a key', async () => {
    const response = await getApi().post<ErrorBody>('/v1/tasks', {
      namespace: 'api_ops',
      name: 'keyed_echo',
      version: '1.0.0',
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('TASKER_IDEMPOTENCY_KEY_REQUIRED');
  });

  it('400 TASKER_INVALID_CONTEXT naming the field that fails the input_schema', async () => {
    const response = await getApi().post<ErrorBody>('/v1/tasks', {
      namespace: 'math',
      name: 'mathematical_sequence',
      version: '1.0.0',
      context: { even_number: 3 },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('TASKER_INVALID_CONTEXT');
    expect(response.body.error.message).toContain('even_number');
    expect(response.body.error.details?.fields).toEqual([
      expect.objectContaining({ path: expect.stringContaining('even_number') as unknown }),
    ]);
  });

  it('400 TASKER_INVALID_TASK_REQUEST listing every bad field', async () => {
    const response = await getApi().post<ErrorBody>('/v1/tasks', {
      name: '',
      priority: 1000,
      tags: 'urgent',
      colour: 'red',
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('TASKER_INVALID_TASK_REQUEST');
    const fields = (response.body.error.details?.fields as { field: string }[]).map((f) => f.field).sort();
    expect(fields).toEqual(['colour', 'name', 'priority', 'tags']);
  });

  it('404 TASKER_TEMPLATE_NOT_FOUND naming the registered versions', async () => {
    const api = getApi();
    const wrongVersion = await api.post<ErrorBody>('/v1/tasks', {
      namespace: 'api_ops',
      name: 'strict_echo',
      version: '3.0.0',
    });
    expect(wrongVersion.status).toBe(404);
    expect(wrongVersion.body.error.code).toBe('TASKER_TEMPLATE_NOT_FOUND');
    expect(wrongVersion.body.error.details?.versions).toEqual(expect.arrayContaining(['1.0.0', '2.0.0']));
    const unknown = await api.post<ErrorBody>('/v1/tasks', { namespace: 'nowhere', name: 'nothing' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain('nowhere/nothing');
  });
});

describe('POST /v1/tasks without a version', () => {
  it('runs the highest registered version in semantic version order, not the newest registration or 0.1.0', async () => {
    const api = getApi();
    const { registerTemplate } = await import('../../../src/db/queries/registerTemplate.ts');
    const { parseTaskTemplate } = await import('../../../src/domain/template/templateParser.ts');
    // Registered out of order: "1.9.0" sorts above "1.10.0" as text and is the newest registration.
    for (const version of ['1.10.0', '1.10.0-rc.1', '1.2.0', '1.9.0']) {
      await registerTemplate(
        api.db,
        parseTaskTemplate(
          `name: versioned_echo\nnamespace_name: api_ops\nversion: ${version}\nsteps:\n  - name: echo\n    handler: { callable: Resilience.Echo }\n`,
          `versioned_echo_${version}.yaml`,
        ),
      );
    }
    const created = await api.post<TaskView>('/v1/tasks', { namespace: 'api_ops', name: 'versioned_echo' });
    expect(created.status).toBe(201);
    expect(created.body.version).toBe('1.10.0');
    const named = await api.post<TaskView>('/v1/tasks', {
      namespace: 'api_ops',
      name: 'versioned_echo',
      version: '1.2.0',
    });
    expect(named.body.version).toBe('1.2.0');
    const none = await api.post<ErrorBody>('/v1/tasks', { namespace: 'api_ops', name: 'never_registered' });
    expect(none.status).toBe(404);
    expect(none.body.error.message).toBe(
      'no template api_ops/never_registered is registered; start a worker that serves it (it registers its templates) or check the namespace and name',
    );
  });
});

describe('GET /v1/tasks: filters and pagination', () => {
  it('counts, pages and filters exactly the tasks created', async () => {
    const api = getApi();
    const since = new Date(Date.now() - 1).toISOString();
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await api.post<TaskView>('/v1/tasks', {
        namespace: 'math',
        name: 'diamond_pattern',
        version: '1.0.0',
        context: { n: i },
      });
      expect(r.status, r.text).toBe(201);
      created.push(r.body.task_uuid);
    }
    for (let i = 0; i < 2; i++) {
      const r = await api.post<TaskView>('/v1/tasks', {
        namespace: 'resilience',
        name: 'permanent_error',
        version: '1.0.0',
      });
      expect(r.status, r.text).toBe(201);
      created.push(r.body.task_uuid);
    }
    for (const uuid of created) await api.waitForStatus(uuid, TERMINAL);
    const until = new Date(Date.now() + 1).toISOString();
    const window = `created_after=${since}&created_before=${until}`;

    const pages: TaskList[] = [];
    for (let page = 1; page <= 4; page++) {
      const r = await api.get<TaskList>(`/v1/tasks?${window}&per_page=2&page=${page}`);
      expect(r.status, r.text).toBe(200);
      pages.push(r.body);
    }
    expect(pages.map((p) => p.tasks.length)).toEqual([2, 2, 2, 1]);
    expect(pages[0]?.pagination).toEqual({
      page: 1,
      per_page: 2,
      total_count: 7,
      total_pages: 4,
      has_next: true,
      has_previous: false,
    });
    expect(pages[3]?.pagination).toMatchObject({ page: 4, has_next: false, has_previous: true });
    const listed = pages.flatMap((p) => p.tasks.map((t) => t.task_uuid));
    expect(listed).toEqual([...created].reverse());

    const past = await api.get<TaskList>(`/v1/tasks?${window}&per_page=2&page=9`);
    expect(past.body.tasks).toEqual([]);
    expect(past.body.pagination).toMatchObject({ total_count: 7, total_pages: 4, has_next: false });

    const errors = await api.get<TaskList>(`/v1/tasks?${window}&status=error`);
    expect(errors.body.pagination.total_count).toBe(2);
    expect(errors.body.tasks.every((t) => t.status === 'error' && t.name === 'permanent_error')).toBe(true);
    expect(
      (await api.get<TaskList>(`/v1/tasks?${window}&status=complete,error`)).body.pagination.total_count,
    ).toBe(7);
    expect(
      (await api.get<TaskList>(`/v1/tasks?${window}&status=complete&status=cancelled`)).body.pagination
        .total_count,
    ).toBe(5);
    expect(
      (await api.get<TaskList>(`/v1/tasks?${window}&namespace=resilience`)).body.pagination.total_count,
    ).toBe(2);
    const diamonds = await api.get<TaskList>(`/v1/tasks?${window}&name=diamond_pattern&namespace=math`);
    expect(diamonds.body.pagination.total_count).toBe(5);
    expect(diamonds.body.tasks[0]).toMatchObject({ total_steps: 4, completed_steps: 4, failed_steps: 0 });
    expect(
      (await api.get<TaskList>(`/v1/tasks?${window}&name=permanent_error&namespace=math`)).body.tasks,
    ).toEqual([]);
    const before = await api.get<TaskList>(`/v1/tasks?created_before=${since}&per_page=100`);
    expect(before.body.tasks.some((t) => created.includes(t.task_uuid))).toBe(false);

    const defaults = await api.get<TaskList>('/v1/tasks');
    expect(defaults.body.pagination).toMatchObject({ page: 1, per_page: 25 });
  });

  it('400 naming the parameter and the allowed values', async () => {
    const api = getApi();
    const status = await api.get<ErrorBody>('/v1/tasks?status=running');
    expect(status.status).toBe(400);
    expect(status.body.error.code).toBe('TASKER_INVALID_REQUEST');
    expect(status.body.error.message).toContain('status must be one of: pending,');
    expect(status.body.error.details?.fields).toEqual([
      {
        field: 'status',
        location: 'query',
        message: expect.stringContaining('resolved_manually') as unknown,
      },
    ]);
    const perPage = await api.get<ErrorBody>('/v1/tasks?per_page=101');
    expect(perPage.body.error.message).toBe('invalid query parameter: per_page must be <= 100 (got 101)');
    const date = await api.get<ErrorBody>('/v1/tasks?created_after=last-tuesday');
    expect(date.body.error.message).toContain('created_after must be an ISO-8601 date');
  });
});

describe('GET and DELETE /v1/tasks/{uuid}', () => {
  it('404 TASKER_TASK_NOT_FOUND for a task that does not exist', async () => {
    const missing = '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6a';
    for (const response of [
      await getApi().get<ErrorBody>(`/v1/tasks/${missing}`),
      await getApi().delete<ErrorBody>(`/v1/tasks/${missing}`),
    ]) {
      expect(response.status).toBe(404);
      expect(response.body.error.code).toBe('TASKER_TASK_NOT_FOUND');
      expect(response.body.error.message).toContain(missing);
    }
  });

  it('cancels a running task and its unfinished steps; cancelling again or a finished task is 409', async () => {
    const api = getApi();
    const created = await api.post<TaskView>('/v1/tasks', {
      namespace: 'math',
      name: 'slow_sequence',
      version: '1.0.0',
      context: { n: 1, ms: 1500 },
    });
    const cancelled = await api.delete<TaskView>(`/v1/tasks/${created.body.task_uuid}`);
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(cancelled.body.completed_at).not.toBeNull();
    expect(cancelled.body.steps.map((s) => s.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);

    const again = await api.delete<ErrorBody>(`/v1/tasks/${created.body.task_uuid}`);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: 'TASKER_TASK_TERMINAL',
      details: { task_uuid: created.body.task_uuid, status: 'cancelled' },
    });
    expect(again.body.error.message).toContain('already cancelled');

    const finished = await api.post<TaskView>('/v1/tasks', {
      namespace: 'math',
      name: 'diamond_pattern',
      version: '1.0.0',
      context: { n: 1 },
    });
    await api.waitForStatus(finished.body.task_uuid, ['complete']);
    const late = await api.delete<ErrorBody>(`/v1/tasks/${finished.body.task_uuid}`);
    expect(late.status).toBe(409);
    expect(late.body.error.message).toContain('already complete');
    expect((await api.get<TaskView>(`/v1/tasks/${finished.body.task_uuid}`)).body.status).toBe('complete');
  });
});

describe('GET /v1/tasks/{uuid}?wait=N', () => {
  const slow = (ms: number) => ({
    namespace: 'math',
    name: 'slow_sequence',
    version: '1.0.0',
    context: { n: 1, ms },
  });

  it('answers as soon as the task is finished, re-reading it without a completion waiter', async () => {
    const api = getApi();
    const created = await api.post<TaskView>('/v1/tasks', slow(100));
    const started = Date.now();
    const answer = await api.get<TaskView>(`/v1/tasks/${created.body.task_uuid}?wait=20`);
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('complete');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('wakes on the task-finished notification with a completion waiter', async () => {
    const api = getApi();
    const listener = new NotificationListener(api.db);
    const waiter = new TaskCompletionWaiter(listener);
    await waiter.start();
    const app = await buildRestServer({ db: api.db, taskCompletionWaiter: waiter });
    try {
      const url = await listenLocally(app);
      const created = await api.post<TaskView>('/v1/tasks', slow(100));
      const response = await fetch(`${url}/v1/tasks/${created.body.task_uuid}?wait=20`);
      const body = (await response.json()) as TaskView;
      expect(body.status).toBe('complete');
      expect(body.steps.map((s) => s.result)).toEqual([{ value: 2 }, { value: 3 }, { value: 4 }]);
      expect(waiter.waiting).toBe(0);
    } finally {
      await app.close();
      await waiter.stop();
      await listener.stop();
    }
  });

  it('serves waiters with one batched check instead of a read per waiter, and refuses waiters beyond the cap', async () => {
    const api = getApi();
    // No listener: only the batched check can wake them.
    const waiter = new TaskCompletionWaiter(null, undefined, { db: api.db, recheckMs: 100, maxWaiters: 2 });
    const app = await buildRestServer({ db: api.db, taskCompletionWaiter: waiter });
    try {
      const url = await listenLocally(app);
      const created = await api.post<TaskView>('/v1/tasks', slow(300));
      const uuid = created.body.task_uuid;
      const waits = [fetch(`${url}/v1/tasks/${uuid}?wait=20`), fetch(`${url}/v1/tasks/${uuid}?wait=20`)];
      for (let i = 0; i < 100 && waiter.waiting < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(waiter.waiting).toBe(2);
      const refused = await fetch(`${url}/v1/tasks/${uuid}?wait=20`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as ErrorBody).error).toMatchObject({
        code: 'TASKER_SERVICE_OVERLOADED',
        message: expect.stringContaining('[orchestration.web] max_waiting_requests') as unknown,
      });
      // Without wait, the same request is answered at once.
      expect((await fetch(`${url}/v1/tasks/${uuid}`)).status).toBe(200);
      const answers = await Promise.all(waits);
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(((await answer.json()) as TaskView).status).toBe('complete');
      }
      expect(waiter.waiting).toBe(0);
    } finally {
      await app.close();
      await waiter.stop();
    }
  });

  it('gives up after N seconds with the task as it is, and refuses waits over 60 s', async () => {
    const api = getApi();
    const created = await api.post<TaskView>('/v1/tasks', slow(3000));
    const started = Date.now();
    const answer = await api.get<TaskView>(`/v1/tasks/${created.body.task_uuid}?wait=1`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(answer.body.status).toBe('steps_in_process');
    const tooLong = await api.get<ErrorBody>(`/v1/tasks/${created.body.task_uuid}?wait=61`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toContain('wait must be <= 60');
    expect((await api.delete(`/v1/tasks/${created.body.task_uuid}`)).status).toBe(200);
  });
});

describe('POST /v1/tasks?wait=N: create and await the result in one request', () => {
  const slow = { namespace: 'math', name: 'slow_sequence', version: '1.0.0', context: { n: 1, ms: 100 } };

  it('answers 201 with the finished task and its results, woken by the completion waiter', async () => {
    const api = getApi();
    const listener = new NotificationListener(api.db);
    const waiter = new TaskCompletionWaiter(listener);
    await waiter.start();
    const app = await buildRestServer({ db: api.db, taskCompletionWaiter: waiter });
    try {
      const url = await listenLocally(app);
      const response = await fetch(`${url}/v1/tasks?wait=20`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(slow),
      });
      expect(response.status).toBe(201);
      const body = (await response.json()) as TaskView;
      expect(response.headers.get('location')).toBe(`/v1/tasks/${body.task_uuid}`);
      expect(body.status).toBe('complete');
      expect(body.steps.map((s) => s.result)).toEqual([{ value: 2 }, { value: 3 }, { value: 4 }]);
      expect(waiter.waiting).toBe(0);
    } finally {
      await app.close();
      await waiter.stop();
      await listener.stop();
    }
  });

  it('without wait answers at once with the task as created; a bad wait is a 400 naming the parameter', async () => {
    const api = getApi();
    const created = await api.post<TaskView>('/v1/tasks', { ...slow, context: { n: 1, ms: 2000 } });
    expect(created.status).toBe(201);
    expect(TERMINAL).not.toContain(created.body.status);
    for (const bad of ['abc', '-1', '61', '1.5']) {
      const response = await api.post<ErrorBody>(`/v1/tasks?wait=${bad}`, slow);
      expect(response.status, bad).toBe(400);
      expect(response.body.error.code).toBe('TASKER_INVALID_REQUEST');
      // The same validator and wording as the wait of GET /v1/tasks/{uuid}: the route's query schema.
      expect(response.body.error.message).toMatch(/^invalid query parameter: wait must be /);
      expect(response.body.error.details?.fields).toEqual([
        expect.objectContaining({ field: 'wait', location: 'query' }),
      ]);
    }
    expect((await api.delete(`/v1/tasks/${created.body.task_uuid}`)).status).toBe(200);
  });
});
