/**
 * Safe retries of task creation: a repeat of `POST /v1/tasks` with the same `Idempotency-Key` header answers
 * the task the first request created (200, `Idempotent-Replayed: true`), also for `always_unique` templates,
 * instead of creating a second task; another key creates another task; templates with an identity of their own
 * keep refusing a duplicate with 409. The TypeScript client sends a key per call, the same on every retry.
 */
import { describe, expect, it } from 'vitest';
import { TaskerClient } from '../../../src/client/taskerClient.ts';
import { useApi } from './apiHarness.ts';
import { apiHandlers, apiTemplates } from './apiFixtures.ts';
import type { ErrorBody, TaskView } from './viewTypes.ts';

const getApi = useApi({ handlers: apiHandlers, templates: apiTemplates() });

const linear = {
  namespace: 'math',
  name: 'mathematical_sequence',
  version: '1.0.0',
  context: { even_number: 2 },
};

async function post(
  key: string | undefined,
  body: unknown,
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(`${getApi().url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key !== undefined && { 'idempotency-key': key }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

async function countTasks(correlationId: string): Promise<number> {
  const { rows } = await getApi().db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM tasker.tasks WHERE correlation_id = $1',
    [correlationId],
  );
  return rows[0]?.n ?? 0;
}

describe('POST /v1/tasks with an Idempotency-Key header', () => {
  it('answers a repeat with the task the first request created, for an always_unique template', async () => {
    const correlation = crypto.randomUUID();
    const body = { ...linear, correlation_id: correlation };
    const first = await post('key-A-1', body);
    expect(first.status).toBe(201);
    const again = await post('key-A-1', body);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((again.body as TaskView).task_uuid).toBe((first.body as TaskView).task_uuid);
    expect(await countTasks(correlation)).toBe(1);
    // Another key, or none: another task (always_unique).
    expect((await post('key-A-2', body)).status).toBe(201);
    expect((await post(undefined, body)).status).toBe(201);
    expect(await countTasks(correlation)).toBe(3);
  });

  it('keeps a strict template refusing a duplicate with 409, whatever the key', async () => {
    const body = {
      namespace: 'api_ops',
      name: 'strict_echo',
      version: '1.0.0',
      context: { n: crypto.randomUUID() },
    };
    expect((await post('key-S-1', body)).status).toBe(201);
    const repeat = await post('key-S-1', body);
    expect(repeat.status).toBe(409);
    expect((repeat.body as ErrorBody).error.code).toBe('TASKER_DUPLICATE_TASK');
  });

  it('refuses a malformed key with 400 naming the header', async () => {
    const answer = await post('x'.repeat(256), linear);
    expect(answer.status).toBe(400);
    expect((answer.body as ErrorBody).error.message).toContain('Idempotency-Key header');
  });

  it('the client sends one key per call, so the same requestKey twice is one task', async () => {
    const client = new TaskerClient(getApi().url);
    try {
      const correlation = crypto.randomUUID();
      const request = { ...linear, correlation_id: correlation };
      const a = await client.createTask(request, { requestKey: 'client-key-1' });
      const b = await client.createTask(request, { requestKey: 'client-key-1' });
      expect(b.task_uuid).toBe(a.task_uuid);
      // By default each call has a key of its own.
      const c = await client.createTask(request);
      expect(c.task_uuid).not.toBe(a.task_uuid);
      expect(await countTasks(correlation)).toBe(2);
    } finally {
      client.close();
    }
  });
});
