/**
 * The CLI client says what a user waits for: `task list` shows progress, `task get --watch` follows a running
 * task, `--wait` rides the server's long poll instead of asking every few milliseconds, and a task of a
 * namespace that no live worker serves gets a warning in the API and in the CLI instead of a silent wait.
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTemplate } from '../../src/db/queries/registerTemplate.ts';
import { parseTaskTemplate } from '../../src/domain/template/templateParser.ts';
import { startOrchestrationProcess, startWorkerProcess, stopProcess } from '../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

const BIN = fileURLToPath(new URL('../../bin/tasker.js', import.meta.url));

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function tasker(args: string[], timeout = 90_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, TASKER_ENV: 'test' }, timeout },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('the CLI client follows tasks and says when nothing serves them', () => {
  let testDb: TestDatabase;
  const processes: TaskerProcess[] = [];
  let url = '';

  beforeAll(async () => {
    testDb = await createTestDatabase();
    const [orchestration, worker] = await Promise.all([
      startOrchestrationProcess({ databaseUrl: testDb.url }),
      startWorkerProcess({ databaseUrl: testDb.url }),
    ]);
    processes.push(orchestration, worker);
    url = orchestration.url;
    // A template of a namespace no worker serves: registered as a worker that has since gone would leave it.
    await registerTemplate(
      testDb.db,
      parseTaskTemplate(
        'name: process_order\nnamespace_name: shop\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n  - name: validate_order\n    handler: { callable: Shop.Validate }\n',
        'process_order.yaml',
      ),
    );
  }, 90_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => stopProcess(p)));
    await testDb.drop();
  });

  async function taskGets(): Promise<number> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('tasker_http_requests_total{') &&
          l.includes('method="GET"') &&
          l.includes('route="/v1/tasks/:task_uuid"') &&
          l.includes('status="200"'),
      );
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  }

  it('--wait long-polls: a task of about 1.5 s costs a few GETs, not one every 25 ms; list shows DONE', async () => {
    const before = await taskGets();
    const created = await tasker([
      'task',
      'create',
      'math/slow_sequence',
      '-c',
      '{"n": 1, "ms": 500}',
      '--wait',
      '--url',
      url,
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/✓ slow_store\s+complete → \{"value":4\}/);
    const taskUuid = /✓ task ([0-9a-f-]{36}) complete in (\d+) ms/.exec(created.stdout);
    expect(Number(taskUuid?.[2])).toBeGreaterThanOrEqual(1500);
    const gets = (await taskGets()) - before;
    expect(gets).toBeGreaterThan(0);
    expect(gets).toBeLessThanOrEqual(5);

    const list = await tasker(['task', 'list', '--url', url]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      new RegExp(`${taskUuid?.[1]}\\s+math/slow_sequence@1\\.0\\.0\\s+complete\\s+100%`),
    );
  }, 120_000);

  it('task get --watch follows a running task to its end', async () => {
    const created = await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'math', name: 'slow_sequence', context: { n: 10, ms: 400 } }),
    });
    const { task_uuid: taskUuid } = (await created.json()) as { task_uuid: string };
    const watched = await tasker(['task', 'get', taskUuid, '--watch', '--url', url]);
    expect(watched.stderr).toBe('');
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/✓ slow_fetch\s+complete → \{"value":11\}/);
    expect(watched.stdout).toMatch(/✓ slow_store\s+complete → \{"value":13\}/);
    expect(watched.stdout).toContain(`✓ task ${taskUuid} complete`);
  }, 90_000);

  it('a task of a namespace no live worker serves: warning in GET, task get and task create --wait', async () => {
    const created = await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'shop', name: 'process_order', version: '1.0.0' }),
    });
    expect(created.status).toBe(201);
    const { task_uuid: taskUuid } = (await created.json()) as { task_uuid: string };
    const view = (await (await fetch(`${url}/v1/tasks/${taskUuid}`)).json()) as {
      warnings?: { code: string; namespace: string; message: string }[];
    };
    expect(view.warnings).toEqual([expect.objectContaining({ code: 'no_live_worker', namespace: 'shop' })]);
    expect(view.warnings?.[0]?.message).toContain('no live worker serves namespace "shop"');
    // A served namespace's unfinished task has none.
    const served = await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'math', name: 'slow_sequence', context: { n: 1, ms: 2000 } }),
    });
    const servedView = (await (
      await fetch(`${url}/v1/tasks/${((await served.json()) as { task_uuid: string }).task_uuid}`)
    ).json()) as { status: string; warnings?: unknown };
    expect(servedView.status).not.toBe('complete');
    expect(servedView.warnings).toBeUndefined();

    const got = await tasker(['task', 'get', taskUuid, '--url', url]);
    expect(got.code).toBe(0);
    expect(got.stdout).toContain('⚠ no live worker serves namespace "shop"');

    const waiting = spawn(
      process.execPath,
      [BIN, 'task', 'create', 'shop/process_order', '--wait', '--url', url],
      {
        env: { ...process.env, TASKER_ENV: 'test' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    waiting.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const warned = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      waiting.once('exit', () => resolve(output.includes('[no_live_worker]')));
      waiting.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('[no_live_worker]')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    waiting.kill('SIGTERM');
    expect(warned, output).toBe(true);
    expect(output).toContain('⚠ no live worker serves namespace "shop"');

    const health = (await (await fetch(`${url}/health/detailed`)).json()) as {
      workers: {
        live: { namespaces: string[] }[];
        namespaces_without_worker: { namespace: string; unfinished_tasks: number }[];
      };
    };
    expect(health.workers.live.map((w) => w.namespaces)).toEqual([['math', 'resilience']]);
    expect(health.workers.namespaces_without_worker).toEqual([{ namespace: 'shop', unfinished_tasks: 2 }]);
  }, 120_000);
});
