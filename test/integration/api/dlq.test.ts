/**
 * The DLQ endpoints over entries written straight into tasker.tasks_dlq (the staleness detector that writes
 * them in production has its own tests): listing with filters and paging, stats, lookups and resolution.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useApi } from './apiHarness.ts';
import type { ErrorBody, TaskView } from './viewTypes.ts';

const getApi = useApi({ engine: false });

interface DlqEntry {
  dlq_entry_uuid: string;
  task_uuid: string;
  namespace: string;
  task_name: string;
  original_state: string;
  dlq_reason: string;
  dlq_timestamp: string;
  resolution_status: string;
  resolution_timestamp: string | null;
  resolution_notes: string | null;
  resolved_by: string | null;
  task_snapshot: unknown;
  metadata: Record<string, unknown>;
}

const MISSING = '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6a';
const tasks: Record<string, string> = {};
const entries: Record<string, string> = {};

async function dlqEntry(
  key: string,
  task: string,
  reason: string,
  minutesAgo: number,
  status = 'pending',
): Promise<void> {
  const { rows } = await getApi().db.query<{ dlq_entry_uuid: string }>(
    `INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, dlq_timestamp, resolution_status,
                                   resolution_timestamp, task_snapshot, metadata)
     VALUES ($1::uuid, 'steps_in_process', $2, now() - make_interval(mins => $3::int), $4::text,
             CASE WHEN $4::text = 'pending' THEN NULL ELSE now() - make_interval(mins => $3::int - 5) END,
             jsonb_build_object('task_uuid', $1::text), '{"threshold_minutes": 30}')
     RETURNING dlq_entry_uuid`,
    [task, reason, minutesAgo, status],
  );
  entries[key] = rows[0]?.dlq_entry_uuid ?? '';
}

beforeAll(async () => {
  const api = getApi();
  for (const [key, namespace, name, context] of [
    ['diamond', 'math', 'diamond_pattern', { n: 1 }],
    ['linear', 'math', 'mathematical_sequence', { even_number: 2 }],
    ['permanent', 'resilience', 'permanent_error', {}],
  ] as const) {
    const created = await api.post<TaskView>('/v1/tasks', { namespace, name, version: '1.0.0', context });
    expect(created.status, created.text).toBe(201);
    tasks[key] = created.body.task_uuid;
  }
  await dlqEntry('old', tasks.diamond ?? '', 'max_retries_exceeded', 20, 'permanently_failed');
  await dlqEntry('diamond', tasks.diamond ?? '', 'staleness_timeout', 3);
  await dlqEntry('linear', tasks.linear ?? '', 'staleness_timeout', 2);
  await dlqEntry('permanent', tasks.permanent ?? '', 'worker_unavailable', 1);
});

describe('GET /v1/dlq', () => {
  it('lists entries newest first with the total', async () => {
    const response = await getApi().get<{ entries: DlqEntry[]; total: number }>('/v1/dlq');
    expect(response.status).toBe(200);
    expect(response.body.total).toBe(4);
    expect(response.body.entries.map((e) => e.dlq_entry_uuid)).toEqual([
      entries.permanent,
      entries.linear,
      entries.diamond,
      entries.old,
    ]);
    expect(response.body.entries[0]).toMatchObject({
      task_uuid: tasks.permanent,
      namespace: 'resilience',
      task_name: 'permanent_error',
      original_state: 'steps_in_process',
      dlq_reason: 'worker_unavailable',
      resolution_status: 'pending',
      resolution_timestamp: null,
      task_snapshot: { task_uuid: tasks.permanent },
      metadata: { threshold_minutes: 30 },
    });
  });

  it('filters by status, reason and namespace, and pages with limit and offset', async () => {
    const api = getApi();
    const list = async (query: string) =>
      (await api.get<{ entries: DlqEntry[]; total: number }>(`/v1/dlq?${query}`)).body;
    expect((await list('resolution_status=pending')).total).toBe(3);
    expect((await list('resolution_status=permanently_failed')).entries.map((e) => e.dlq_entry_uuid)).toEqual(
      [entries.old],
    );
    expect((await list('reason=staleness_timeout')).entries.map((e) => e.dlq_entry_uuid)).toEqual([
      entries.linear,
      entries.diamond,
    ]);
    expect((await list('namespace=math')).total).toBe(3);
    expect((await list('namespace=math&reason=staleness_timeout&resolution_status=pending')).total).toBe(2);
    const page = await list('limit=2&offset=1');
    expect(page.total).toBe(4);
    expect(page.entries.map((e) => e.dlq_entry_uuid)).toEqual([entries.linear, entries.diamond]);
  });

  it('400 for unknown filter values, naming the allowed ones', async () => {
    const response = await getApi().get<ErrorBody>('/v1/dlq?reason=boredom');
    expect(response.status).toBe(400);
    expect(response.body.error.message).toContain(
      'reason must be one of: staleness_timeout, max_retries_exceeded',
    );
  });
});

describe('DLQ entry lookups and stats', () => {
  it('GET /v1/dlq/stats counts by reason and status', async () => {
    const response = await getApi().get<Record<string, unknown>>('/v1/dlq/stats');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      total: 4,
      by_reason: { staleness_timeout: 2, worker_unavailable: 1, max_retries_exceeded: 1, manual_dlq: 0 },
      by_status: { pending: 3, permanently_failed: 1, manually_resolved: 0, cancelled: 0 },
      avg_resolution_minutes: 5,
    });
    expect(typeof response.body.oldest_pending_at).toBe('string');
  });

  it('GET /v1/dlq/entry/{uuid} and /v1/dlq/task/{uuid}', async () => {
    const api = getApi();
    const one = await api.get<DlqEntry>(`/v1/dlq/entry/${entries.linear}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ task_uuid: tasks.linear, task_name: 'mathematical_sequence' });
    const forTask = await api.get<{ entries: DlqEntry[] }>(`/v1/dlq/task/${tasks.diamond}`);
    expect(forTask.body.entries.map((e) => e.dlq_entry_uuid)).toEqual([entries.diamond, entries.old]);
    expect((await api.get<{ entries: DlqEntry[] }>(`/v1/dlq/task/${MISSING}`)).body.entries).toEqual([]);
    const missing = await api.get<ErrorBody>(`/v1/dlq/entry/${MISSING}`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('TASKER_DLQ_ENTRY_NOT_FOUND');
    const invalid = await api.get<ErrorBody>('/v1/dlq/entry/42');
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('TASKER_INVALID_UUID');
    expect(invalid.body.error.message).toContain('dlq_entry_uuid');
  });
});

describe('PATCH /v1/dlq/entry/{uuid}', () => {
  it('resolves a pending entry once; a second update is 409', async () => {
    const api = getApi();
    const resolved = await api.patch<DlqEntry>(`/v1/dlq/entry/${entries.permanent}`, {
      resolution_status: 'manually_resolved',
      resolution_notes: 'resolved the step by hand',
      resolved_by: 'ops@example.com',
    });
    expect(resolved.status, resolved.text).toBe(200);
    expect(resolved.body).toMatchObject({
      dlq_entry_uuid: entries.permanent,
      resolution_status: 'manually_resolved',
      resolution_notes: 'resolved the step by hand',
      resolved_by: 'ops@example.com',
    });
    expect(resolved.body.resolution_timestamp).not.toBeNull();
    const again = await api.patch<ErrorBody>(`/v1/dlq/entry/${entries.permanent}`, {
      resolution_status: 'cancelled',
    });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: 'TASKER_DLQ_ENTRY_RESOLVED',
      details: { current_status: 'manually_resolved' },
    });
    expect((await api.get<DlqEntry>(`/v1/dlq/entry/${entries.permanent}`)).body.resolution_status).toBe(
      'manually_resolved',
    );
  });

  it('404 for an unknown entry, 400 for a status an entry cannot be set to', async () => {
    const api = getApi();
    const missing = await api.patch<ErrorBody>(`/v1/dlq/entry/${MISSING}`, {
      resolution_status: 'cancelled',
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('TASKER_DLQ_ENTRY_NOT_FOUND');
    const pending = await api.patch<ErrorBody>(`/v1/dlq/entry/${entries.linear}`, {
      resolution_status: 'pending',
    });
    expect(pending.status).toBe(400);
    expect(pending.body.error.message).toContain(
      'resolution_status must be one of: manually_resolved, permanently_failed, cancelled',
    );
  });
});
