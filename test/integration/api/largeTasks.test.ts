/**
 * One small request, a bounded answer: POST /v1/tasks of a task with many steps lists the first 100 and says how
 * many it left out, with counters over all of them; the step routes list every step. A template over
 * `[limits] max_steps_per_task` cannot become a task at all (test/integration/engine/limits.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { CREATION_ANSWER_MAX_STEPS } from '../../../src/api/rest/createdTaskView.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import { useApi } from './apiHarness.ts';
import { apiHandlers, apiTemplates } from './apiFixtures.ts';
import type { TaskView } from './viewTypes.ts';

const getApi = useApi({ handlers: apiHandlers, templates: apiTemplates() });

const STEPS = 150;
const WIDE = [
  'name: wide_fan',
  'namespace_name: wide_ops',
  'version: 1.0.0',
  'identity_strategy: always_unique',
  'steps:',
  ...Array.from({ length: STEPS }, (_, i) => `  - name: s${i}\n    handler: { callable: Wide.Step }`),
].join('\n');

describe('POST /v1/tasks of a task with many steps', () => {
  it('lists the first 100 steps, says how many it left out, and counts them all', async () => {
    const api = getApi();
    await registerTemplate(api.db, parseTaskTemplate(WIDE, 'wide_fan.yaml'));
    const created = await api.post<TaskView & { steps_omitted?: number }>('/v1/tasks', {
      namespace: 'wide_ops',
      name: 'wide_fan',
      version: '1.0.0',
    });
    expect(created.status).toBe(201);
    expect(created.body.steps).toHaveLength(CREATION_ANSWER_MAX_STEPS);
    expect(created.body.steps_omitted).toBe(STEPS - CREATION_ANSWER_MAX_STEPS);
    expect(created.body.total_steps).toBe(STEPS);
    const all = await api.get<{ steps: unknown[] }>(`/v1/tasks/${created.body.task_uuid}/workflow_steps`);
    expect(all.body.steps).toHaveLength(STEPS);
    expect((await api.delete(`/v1/tasks/${created.body.task_uuid}`)).status).toBe(200);
  });
});
