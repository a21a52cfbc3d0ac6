/**
 * Live workers are known from their heartbeat rows (tasker.worker_namespaces): a task of a namespace without a
 * live worker gets a `no_live_worker` warning in GET /v1/tasks/{uuid}, a heartbeat older than 30 s does not
 * count, and a worker removes its rows when it stops.
 */
import { describe, expect, it } from 'vitest';
import { recordWorkerHeartbeat, removeWorker } from '../../../src/db/queries/workerRegistry.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import { useApi } from './apiHarness.ts';
import { apiHandlers, apiTemplates } from './apiFixtures.ts';
import type { TaskView } from './viewTypes.ts';

const getApi = useApi({ handlers: apiHandlers, templates: apiTemplates() });

interface Warned extends TaskView {
  warnings?: { code: string; namespace: string; message: string }[];
}

describe('no live worker for a namespace', () => {
  it('warns while no worker has a fresh heartbeat for the namespace, and not once one has', async () => {
    const api = getApi();
    await registerTemplate(
      api.db,
      parseTaskTemplate(
        'name: lonely\nnamespace_name: orphan_ns\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n  - name: only\n    handler: { callable: Nobody.Home }\n',
        'lonely.yaml',
      ),
    );
    const created = await api.post<TaskView>('/v1/tasks', { namespace: 'orphan_ns', name: 'lonely' });
    expect(created.status).toBe(201);
    const path = `/v1/tasks/${created.body.task_uuid}`;

    const unserved = await api.get<Warned>(path);
    expect(unserved.body.warnings).toEqual([
      {
        code: 'no_live_worker',
        namespace: 'orphan_ns',
        message: expect.stringContaining('no live worker serves namespace "orphan_ns"') as unknown,
      },
    ]);

    const worker = {
      workerId: 'test-worker',
      namespaces: ['orphan_ns'],
      hostname: 'h',
      pid: 1,
      capacity: 1,
      version: 't',
    };
    await recordWorkerHeartbeat(api.db, worker);
    expect((await api.get<Warned>(path)).body.warnings).toBeUndefined();

    await api.db.query(
      `UPDATE tasker.worker_namespaces SET heartbeat_at = now() - interval '31 seconds' WHERE worker_id = $1`,
      [worker.workerId],
    );
    expect((await api.get<Warned>(path)).body.warnings?.map((w) => w.code)).toEqual(['no_live_worker']);

    await recordWorkerHeartbeat(api.db, worker);
    expect((await api.get<Warned>(path)).body.warnings).toBeUndefined();
    await removeWorker(api.db, worker.workerId);
    expect((await api.get<Warned>(path)).body.warnings?.map((w) => w.code)).toEqual(['no_live_worker']);
  });

  it('running workers keep a row per namespace; a stopped worker takes its rows away', async () => {
    const api = getApi();
    const rows = async () =>
      (
        await api.db.query<{ worker_id: string; namespace: string }>(
          'SELECT worker_id, namespace FROM tasker.worker_namespaces ORDER BY worker_id, namespace',
        )
      ).rows;
    const workers = api.cluster?.workers ?? [];
    expect(workers.length).toBeGreaterThan(0);
    const first = workers[0];
    if (first === undefined) throw new Error('no worker');
    expect(
      (await rows())
        .filter((r) => r.worker_id === first.id)
        .map((r) => r.namespace)
        .sort(),
    ).toEqual([...first.namespaces].sort());
    await first.stop();
    expect((await rows()).filter((r) => r.worker_id === first.id)).toEqual([]);
  });
});
