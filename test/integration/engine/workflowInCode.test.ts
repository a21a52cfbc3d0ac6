/**
 * A workflow defined in TypeScript (test/fixtures/workflows/diamondWorkflow.ts), loaded as a handlers module
 * the way a worker service loads one, runs to completion on a real worker and orchestrator; each step's
 * result reaches the steps after it along the diamond's edges.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { loadWorkerModule } from '../../../src/services/handlerModule.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { stepsByName } from '../../helpers/engine/inspect.ts';
import { waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const DIAMOND_MODULE = fileURLToPath(new URL('../../fixtures/workflows/diamondWorkflow.ts', import.meta.url));

describe('a workflow defined in code', () => {
  const getTestDb = useTestDatabase();
  let db: Database;
  let cluster: Cluster;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    const { handlers, workflowTemplates } = await loadWorkerModule(DIAMOND_MODULE);
    cluster = await startCluster({ db, inline: false, handlers, templates: workflowTemplates });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('runs the typed diamond to completion with each result flowing along the edges', async () => {
    const created = await createTask(db, {
      namespace: 'typed_flows',
      name: 'typed_diamond',
      version: '1.0.0',
      context: { n: 6 },
    });
    await waitForTask(db, created.taskUuid, ['complete', 'error'], 10_000);
    const steps = await stepsByName(db, created.taskUuid);
    expect(
      Object.fromEntries(
        Object.entries(steps).map(([name, step]) => [name, [step.current_state, step.results]]),
      ),
    ).toEqual({
      // The zod default of `label` applied before the first step ran.
      split: ['complete', { half: 3, label: 'DIAMOND' }],
      double: ['complete', { doubled: 6 }],
      // square reads its config (exponent 2) and split's half.
      square: ['complete', { squared: 9 }],
      total: ['complete', { label: 'diamond', total: 15, attempt: 1 }],
    });
  });

  it('refuses at creation a context its input schema refuses, like a YAML template', async () => {
    await expect(
      createTask(db, {
        namespace: 'typed_flows',
        name: 'typed_diamond',
        version: '1.0.0',
        context: { n: 'six' },
      }),
    ).rejects.toMatchObject({ code: 'TASKER_INVALID_CONTEXT' });
  });
});
