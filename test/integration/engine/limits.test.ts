/**
 * `[limits]`: one small request cannot make the engine do unbounded work. A template with more steps than
 * max_steps_per_task is refused by a worker at start and by task creation; a context larger than
 * max_context_bytes is refused at creation; a result larger than max_result_bytes fails its step for good.
 * Every refusal names the key to raise.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { DEFAULT_TASK_LIMITS } from '../../../src/domain/limits.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { TemplateCache } from '../../../src/orchestration/templateCache.ts';
import { taskLimits } from '../../../src/services/serviceOptions.ts';
import { createTestTasker } from '../../../src/testing.ts';
import type { TestTasker } from '../../../src/testing.ts';
import { defineHandler } from '../../../src/worker/handlerApi.ts';
import { Worker } from '../../../src/worker/worker.ts';
import { workflow } from '../../../src/worker/workflow.ts';
import { templateNamed } from '../../helpers/engine/fixtures.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const diamond = templateNamed('diamond_pattern'); // 4 steps
const tight = { ...DEFAULT_TASK_LIMITS, maxStepsPerTask: 3, maxContextBytes: 64 };

describe('limits at task creation and worker start', () => {
  const testDb = useTestDatabase();
  beforeAll(async () => {
    await registerTemplate(testDb().db, diamond);
  });

  const request = (context: Record<string, unknown>) => ({
    namespace: diamond.namespace,
    name: diamond.name,
    version: diamond.version,
    context,
  });

  it('refuses a task whose template has more steps than max_steps_per_task', async () => {
    const error = await createTask(testDb().db, request({ n: 1 }), {
      templates: new TemplateCache(),
      limits: tight,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'TASKER_LIMIT_EXCEEDED',
      details: { limit: 'max_steps_per_task', steps: 4, max: 3 },
    });
    expect((error as Error).message).toMatch(/has 4 steps; at most 3 .*\[limits\] max_steps_per_task/);
  });

  it('refuses a context larger than max_context_bytes, and takes one that fits', async () => {
    const error = await createTask(testDb().db, request({ n: 1, pad: 'x'.repeat(100) }), {
      templates: new TemplateCache(),
      limits: { ...tight, maxStepsPerTask: 10 },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'TASKER_LIMIT_EXCEEDED',
      details: { limit: 'max_context_bytes', max: 64 },
    });
    expect((error as Error).message).toMatch(/\[limits\] max_context_bytes/);
    const created = await createTask(testDb().db, request({ n: 1 }), {
      templates: new TemplateCache(),
      limits: { ...tight, maxStepsPerTask: 10 },
    });
    expect(created.taskUuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses to start a worker serving a template over the step limit, before registering anything', async () => {
    const big = { ...diamond, name: 'diamond_over_limit' };
    const worker = new Worker({
      db: testDb().db,
      provider: new PgmqMessagingProvider(testDb().db),
      handlers: [...new Set(big.steps.map((step) => step.handler.callable))].map((name) =>
        defineHandler(name, () => ({})),
      ),
      templates: [big],
      limits: { maxStepsPerTask: 3, maxResultBytes: 1_000 },
    });
    await expect(worker.start()).rejects.toMatchObject({ code: 'TASKER_INVALID_TEMPLATE' });
    await expect(worker.start()).rejects.toThrow(/diamond_over_limit.*has 4 steps; at most 3/s);
    const registered = await testDb().db.query(
      "SELECT 1 FROM tasker.named_tasks WHERE name = 'diamond_over_limit'",
    );
    expect(registered.rows).toEqual([]);
  });

  it('reads the limits from [limits], with the documented defaults', () => {
    const { config } = loadConfig({ env: { TASKER_ENV: 'test' } });
    expect(taskLimits(config)).toEqual(DEFAULT_TASK_LIMITS);
    const file = join(mkdtempSync(join(tmpdir(), 'tasker-limits-')), 'tasker.toml');
    writeFileSync(file, '[limits]\nmax_steps_per_task = 0\nmax_result_bytes = 2048\n');
    expect(() => loadConfig({ env: { TASKER_ENV: 'test', TASKER_CONFIG_PATH: file } })).toThrow(
      /limits\.max_steps_per_task/,
    );
    writeFileSync(file, '[limits]\nmax_result_bytes = 2048\n');
    const custom = loadConfig({ env: { TASKER_ENV: 'test', TASKER_CONFIG_PATH: file } });
    expect(taskLimits(custom.config)).toEqual({ ...DEFAULT_TASK_LIMITS, maxResultBytes: 2048 });
  });
});

describe('a result larger than max_result_bytes', () => {
  const big = workflow({
    namespace: 'limits',
    name: 'big_result',
    version: '1.0.0',
    identity: 'always_unique',
  });
  big.step('produce', {
    retry: { maxAttempts: 3, backoff: 'fixed', backoffBaseMs: 10, maxBackoffMs: 10 },
    run: () => ({ blob: 'x'.repeat(DEFAULT_TASK_LIMITS.maxResultBytes + 1) }),
  });
  let env: TestTasker;
  beforeAll(async () => {
    env = await createTestTasker({ workflows: [big] });
  }, 60_000);
  afterAll(() => env.stop());

  it('fails its step for good, naming the size and the key, and stores nothing of it', async () => {
    const task = await env.execute(big, {});
    expect(task.status).toBe('error');
    const step = env.step(task, 'produce');
    expect(step.attempts).toBe(1);
    expect(step.result).toBeNull();
    expect(step.error).toMatchObject({ error_type: 'result_too_large', retryable: false });
    expect((step.error as { message: string }).message).toMatch(
      /result is \d+ bytes of JSON; at most 1048576 are stored \(\[limits\] max_result_bytes\)/,
    );
  });
});
