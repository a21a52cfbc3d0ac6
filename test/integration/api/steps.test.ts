/**
 * GET /v1/tasks/{uuid}/workflow_steps[/{step}] and the operator actions of PATCH: results and errors are
 * visible; reset, complete and resolve bring a failed task back and it finishes; refusals say why.
 */
import { describe, expect, it } from 'vitest';
import { TERMINAL, useApi } from './apiHarness.ts';
import { apiHandlers, apiTemplates, openGates } from './apiFixtures.ts';
import { stepNamed } from './viewTypes.ts';
import type { ErrorBody, StepView, TaskView } from './viewTypes.ts';

const getApi = useApi({ handlers: apiHandlers, templates: apiTemplates() });

const OTHER_UUID = '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6a';

async function runToEnd(body: Record<string, unknown>): Promise<TaskView> {
  const api = getApi();
  const created = await api.post<TaskView>('/v1/tasks', { version: '1.0.0', ...body });
  expect(created.status, created.text).toBe(201);
  return api.waitForStatus<TaskView>(created.body.task_uuid, TERMINAL);
}

const stepPath = (task: TaskView, name: string) =>
  `/v1/tasks/${task.task_uuid}/workflow_steps/${stepNamed(task, name).step_uuid}`;

describe('step views', () => {
  it('lists every step with its dependencies and results, and shows one step alone', async () => {
    const api = getApi();
    const task = await runToEnd({ namespace: 'math', name: 'diamond_pattern', context: { n: 3 } });
    const list = await api.get<{ steps: StepView[] }>(`/v1/tasks/${task.task_uuid}/workflow_steps`);
    expect(list.status).toBe(200);
    expect(
      list.body.steps.map((s) => ({
        name: s.name,
        deps: s.dependencies,
        result: s.result,
        status: s.status,
      })),
    ).toEqual([
      { name: 'diamond_start', deps: [], result: { value: 9 }, status: 'complete' },
      { name: 'diamond_branch_b', deps: ['diamond_start'], result: { value: 18 }, status: 'complete' },
      { name: 'diamond_branch_c', deps: ['diamond_start'], result: { value: 27 }, status: 'complete' },
      {
        name: 'diamond_end',
        deps: ['diamond_branch_b', 'diamond_branch_c'],
        result: { value: 45 },
        status: 'complete',
      },
    ]);
    const end = list.body.steps[3];
    const one = await api.get<StepView>(`/v1/tasks/${task.task_uuid}/workflow_steps/${end?.step_uuid}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(end);
    expect(one.body).toMatchObject({
      task_uuid: task.task_uuid,
      handler: 'Math.Sum',
      attempts: 1,
      max_attempts: 3,
      retryable: true,
      ready: false,
      error: null,
    });
    expect(Date.parse(one.body.completed_at ?? '')).toBeGreaterThanOrEqual(Date.parse(one.body.created_at));
  });

  it('shows a failed step with its error', async () => {
    const task = await runToEnd({ namespace: 'resilience', name: 'permanent_error' });
    const step = await getApi().get<StepView>(stepPath(task, 'rejecting_step'));
    expect(step.body).toMatchObject({ status: 'error', attempts: 1, result: null, ready: false });
    expect(step.body.error).toMatchObject({
      message: 'the request is invalid and will never succeed',
      retryable: false,
      code: 'INVALID_REQUEST',
      attempt: 1,
    });
  });

  it('a step is also found by its name: GET and PATCH take the name as they take the UUID', async () => {
    const api = getApi();
    const task = await runToEnd({ namespace: 'resilience', name: 'permanent_error' });
    const byUuid = await api.get<StepView>(stepPath(task, 'rejecting_step'));
    const byName = await api.get<StepView>(`/v1/tasks/${task.task_uuid}/workflow_steps/rejecting_step`);
    expect(byName.status, byName.text).toBe(200);
    expect(byName.body).toEqual(byUuid.body);
    // A handler's PermanentError ends the step with attempts left: nothing will retry it.
    expect(byName.body).toMatchObject({
      status: 'error',
      attempts: 1,
      retryable: true,
      retry_eligible: false,
    });
    expect(byName.body.max_attempts).toBeGreaterThan(1);

    const missing = await api.get<ErrorBody>(`/v1/tasks/${task.task_uuid}/workflow_steps/no_such_step`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('TASKER_STEP_NOT_FOUND');
    expect(missing.body.error.message).toContain('no step no_such_step');

    const resolved = await api.patch<StepView>(`/v1/tasks/${task.task_uuid}/workflow_steps/rejecting_step`, {
      action_type: 'resolve_manually',
      reason: 'handled by hand',
    });
    expect(resolved.status, resolved.text).toBe(200);
    expect(resolved.body).toMatchObject({
      step_uuid: stepNamed(task, 'rejecting_step').step_uuid,
      status: 'resolved_manually',
    });
    const unknown = await api.patch<ErrorBody>(`/v1/tasks/${task.task_uuid}/workflow_steps/no_such_step`, {
      action_type: 'resolve_manually',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('TASKER_STEP_NOT_FOUND');
  });

  it('404 when the step is not in that task, or the task does not exist', async () => {
    const api = getApi();
    const a = await runToEnd({ namespace: 'resilience', name: 'permanent_error' });
    const b = await runToEnd({ namespace: 'resilience', name: 'permanent_error' });
    const foreign = await api.get<ErrorBody>(
      `/v1/tasks/${a.task_uuid}/workflow_steps/${stepNamed(b, 'rejecting_step').step_uuid}`,
    );
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('TASKER_STEP_NOT_FOUND');
    expect(foreign.body.error.message).toContain(`/v1/tasks/${a.task_uuid}/workflow_steps`);
    const noTask = await api.get<ErrorBody>(`/v1/tasks/${OTHER_UUID}/workflow_steps/${OTHER_UUID}`);
    expect(noTask.body.error.code).toBe('TASKER_TASK_NOT_FOUND');
    const noList = await api.get<ErrorBody>(`/v1/tasks/${OTHER_UUID}/workflow_steps`);
    expect(noList.status).toBe(404);
    expect(noList.body.error.code).toBe('TASKER_TASK_NOT_FOUND');
  });
});

describe('PATCH /v1/tasks/{uuid}/workflow_steps/{step}', () => {
  it('reset_for_retry on the failed step of a task in error: the step runs again and the task completes', async () => {
    const api = getApi();
    const failed = await runToEnd({ namespace: 'api_ops', name: 'operator_fix' });
    expect(failed.status).toBe('error');
    expect(stepNamed(failed, 'gate')).toMatchObject({ status: 'error', attempts: 1 });
    expect(stepNamed(failed, 'gate').error?.code).toBe('GATE_CLOSED');

    openGates.add(failed.task_uuid);
    const reset = await api.patch<StepView>(stepPath(failed, 'gate'), {
      action_type: 'reset_for_retry',
      reason: 'downstream fixed',
      resolved_by: 'ops@example.com',
    });
    expect(reset.status, reset.text).toBe(200);
    expect(reset.body.step_uuid).toBe(stepNamed(failed, 'gate').step_uuid);
    expect(['pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration', 'complete']).toContain(
      reset.body.status,
    );

    const done = await api.waitForStatus<TaskView>(failed.task_uuid, TERMINAL);
    expect(done.status).toBe('complete');
    expect(stepNamed(done, 'gate')).toMatchObject({
      status: 'complete',
      attempts: 1,
      result: { opened: true, attempt: 1 },
    });
    expect(stepNamed(done, 'after_gate').result).toEqual({ echoed: { opened: true, attempt: 1 } });
  });

  it('complete_manually: the supplied result is what the dependent step sees', async () => {
    const api = getApi();
    const failed = await runToEnd({ namespace: 'api_ops', name: 'operator_fix' });
    expect(failed.status).toBe('error');
    const completed = await api.patch<StepView>(stepPath(failed, 'gate'), {
      action_type: 'complete_manually',
      completion_data: { result: { opened: 'by hand', ticket: 'OPS-7' }, metadata: { source: 'runbook' } },
      reason: 'done by hand',
    });
    expect(completed.status, completed.text).toBe(200);
    expect(completed.body).toMatchObject({
      status: 'complete',
      result: { opened: 'by hand', ticket: 'OPS-7' },
    });

    const done = await api.waitForStatus<TaskView>(failed.task_uuid, TERMINAL);
    expect(done.status).toBe('complete');
    expect(stepNamed(done, 'after_gate').result).toEqual({ echoed: { opened: 'by hand', ticket: 'OPS-7' } });
  });

  it('resolve_manually: the failed step counts as done and the task finishes', async () => {
    const api = getApi();
    const failed = await runToEnd({ namespace: 'resilience', name: 'permanent_error' });
    const resolved = await api.patch<StepView>(stepPath(failed, 'rejecting_step'), {
      action_type: 'resolve_manually',
    });
    expect(resolved.status, resolved.text).toBe(200);
    expect(resolved.body.status).toBe('resolved_manually');
    const done = await api.waitForStatus<TaskView>(failed.task_uuid, TERMINAL);
    expect(done).toMatchObject({ status: 'complete', completed_steps: 1, failed_steps: 0 });
  });

  it('409 TASKER_STEP_ACTION_NOT_ALLOWED from a state the action does not accept, or on a finished task', async () => {
    const api = getApi();
    const failed = await runToEnd({ namespace: 'resilience', name: 'always_fails' });
    const pending = await api.patch<ErrorBody>(stepPath(failed, 'never_runs'), {
      action_type: 'reset_for_retry',
    });
    expect(pending.status).toBe(409);
    expect(pending.body.error).toMatchObject({
      code: 'TASKER_STEP_ACTION_NOT_ALLOWED',
      details: { current_state: 'pending', allowed_from: ['error'] },
    });
    expect(pending.body.error.message).toContain('accepted from error');

    const complete = await runToEnd({ namespace: 'math', name: 'diamond_pattern', context: { n: 1 } });
    const late = await api.patch<ErrorBody>(stepPath(complete, 'diamond_end'), {
      action_type: 'resolve_manually',
    });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('TASKER_STEP_ACTION_NOT_ALLOWED');
    expect(late.body.error.message).toContain('is complete');
  });

  it('404 for an unknown task or a step of another task', async () => {
    const api = getApi();
    const a = await runToEnd({ namespace: 'resilience', name: 'permanent_error' });
    const missingTask = await api.patch<ErrorBody>(`/v1/tasks/${OTHER_UUID}/workflow_steps/${OTHER_UUID}`, {
      action_type: 'resolve_manually',
    });
    expect(missingTask.status).toBe(404);
    expect(missingTask.body.error.code).toBe('TASKER_TASK_NOT_FOUND');
    const missingStep = await api.patch<ErrorBody>(`/v1/tasks/${a.task_uuid}/workflow_steps/${OTHER_UUID}`, {
      action_type: 'resolve_manually',
    });
    expect(missingStep.status).toBe(404);
    expect(missingStep.body.error.code).toBe('TASKER_STEP_NOT_FOUND');
    // Nothing changed.
    expect((await api.get<TaskView>(`/v1/tasks/${a.task_uuid}`)).body.status).toBe('error');
  });

  it('400 when completion_data is missing for complete_manually or given for another action', async () => {
    const api = getApi();
    const failed = await runToEnd({ namespace: 'resilience', name: 'permanent_error' });
    const missing = await api.patch<ErrorBody>(stepPath(failed, 'rejecting_step'), {
      action_type: 'complete_manually',
    });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({
      code: 'TASKER_INVALID_REQUEST',
      details: { fields: [expect.objectContaining({ field: 'completion_data' })] },
    });
    const extra = await api.patch<ErrorBody>(stepPath(failed, 'rejecting_step'), {
      action_type: 'reset_for_retry',
      completion_data: { result: 1 },
    });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toContain('only allowed with action_type complete_manually');
    const noResult = await api.patch<ErrorBody>(stepPath(failed, 'rejecting_step'), {
      action_type: 'complete_manually',
      completion_data: { metadata: {} },
    });
    expect(noResult.status).toBe(400);
    expect(noResult.body.error.details?.fields).toEqual([
      { field: 'completion_data.result', location: 'body', message: 'is required' },
    ]);
    expect((await api.get<StepView>(stepPath(failed, 'rejecting_step'))).body.status).toBe('error');
  });
});
