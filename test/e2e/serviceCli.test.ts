/**
 * The service commands as a newcomer and an operator meet them: `tasker dev` end to end on the embedded
 * database, services refusing an unmigrated database or a broken handlers module with one clear line, and
 * the CLI client against a running server.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

function tasker(args: string[], env: Record<string, string> = {}, timeout = 90_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, DATABASE_URL: '', TASKER_ENV: 'test', ...env }, timeout },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('tasker dev', () => {
  it('runs the sample task to completion on a fresh embedded database and exits 0 with --once', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tasker-dev-'));
    try {
      const run = await tasker(['dev', '--once', '--port', '0', '--database-url', `pglite:${folder}`]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('embedded PGlite');
      expect(run.stdout).toMatch(/Schema at version \d+ \(applied \d+ migrations, \d+ SQL function files\)/);
      expect(run.stdout).toMatch(/REST API at http:\/\/127\.0\.0\.1:\d+/);
      // The mixed DAG with n = 2: every step's value is shown as it completes.
      for (const [step, value] of [
        ['dag_init', 2],
        ['dag_validate', 10],
        ['dag_finalize', 110],
      ] as const)
        expect(run.stdout).toMatch(new RegExp(`✓ ${step}\\s+complete → \\{"value":${value}\\}`));
      expect(run.stdout).toMatch(/✓ task [0-9a-f-]{36} complete in \d+ ms/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('services refuse to start with one clear line', () => {
  let unmigrated: TestDatabase;
  beforeAll(async () => {
    unmigrated = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await unmigrated.drop();
  });

  it('orchestration on an unmigrated database says to run tasker migrate', async () => {
    const run = await tasker(['orchestration', '--bind', '127.0.0.1:0', '--grpc-bind', '127.0.0.1:0'], {
      DATABASE_URL: unmigrated.url,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/✗ .*run `npx tasker migrate` first \[TASKER_SCHEMA_NOT_MIGRATED\]\n$/);
    expect(run.stderr).not.toMatch(/\bat .+\.ts:\d+/);
  });

  it('a handlers module that is not an ES module is refused with the fix', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tasker-cjs-'));
    try {
      writeFileSync(
        join(folder, 'handlers.ts'),
        "import { defineHandler } from '" +
          fileURLToPath(new URL('../../src/worker/handlerApi.ts', import.meta.url)) +
          "';\nexport default [defineHandler('A.B', () => null)];\n",
      );
      const run = await tasker(
        ['worker', '--handlers', join(folder, 'handlers.ts'), '--bind', '127.0.0.1:0'],
        {
          DATABASE_URL: unmigrated.url,
        },
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('add "type": "module" to the package.json');
      expect(run.stderr).toContain('[TASKER_HANDLERS_MODULE_INVALID]');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('a worker whose handlers module does not exist names the path and how to fix it', async () => {
    const run = await tasker(['worker', '--handlers', './no/such/handlers.ts', '--bind', '127.0.0.1:0'], {
      DATABASE_URL: unmigrated.url,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('handlers module ./no/such/handlers.ts does not exist');
    expect(run.stderr).toContain('[TASKER_HANDLERS_MODULE_INVALID]');
  });

  it('a worker whose template names a handler the module lacks lists the missing handler', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tasker-handlers-'));
    try {
      writeFileSync(join(folder, 'package.json'), '{ "type": "module" }\n');
      writeFileSync(
        join(folder, 'handlers.ts'),
        "import { defineHandler } from '" +
          fileURLToPath(new URL('../../src/worker/handlerApi.ts', import.meta.url)) +
          "';\nexport default [defineHandler('Math.SquareInput', () => ({ value: 1 }))];\n",
      );
      const testDb = await createTestDatabase();
      try {
        const run = await tasker(
          [
            'worker',
            '--handlers',
            join(folder, 'handlers.ts'),
            '--templates',
            fileURLToPath(new URL('../../examples/templates', import.meta.url)),
            '--bind',
            '127.0.0.1:0',
            '--grpc-bind',
            '127.0.0.1:0',
          ],
          { DATABASE_URL: testDb.url },
        );
        expect(run.code).toBe(1);
        expect(run.stderr).toContain('[TASKER_UNKNOWN_HANDLER]');
        expect(run.stderr).toContain('Math.Multiply');
      } finally {
        await testDb.drop();
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('the CLI client against a running server', () => {
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
  }, 60_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => stopProcess(p)));
    await testDb.drop();
  });

  it('task create --wait shows the steps and ends complete; get, list and --json agree', async () => {
    const created = await tasker(
      ['task', 'create', 'math/diamond_pattern@1.0.0', '-c', '{"n": 3}', '--wait'],
      {
        TASKER_URL: url,
      },
    );
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/✓ diamond_end\s+complete → \{"value":45\}/);
    const taskUuid = /✓ task ([0-9a-f-]{36}) complete/.exec(created.stdout)?.[1] ?? '';
    expect(taskUuid).not.toBe('');

    const got = await tasker(['task', 'get', taskUuid, '--json', '--url', url]);
    expect(got.code).toBe(0);
    const view = JSON.parse(got.stdout) as {
      status: string;
      steps: { name: string; result: { value: number } }[];
    };
    expect(view.status).toBe('complete');
    expect(view.steps.find((s) => s.name === 'diamond_branch_c')?.result.value).toBe(27);

    const list = await tasker(['task', 'list', '--status', 'complete', '--url', url]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(taskUuid);
    expect(list.stdout).toMatch(/\(1 tasks\)/);
    // Four CLI processes, each starting Node and tsx: 7 s alone, over a minute once on a machine running three
    // other test files' clusters beside it.
  }, 120_000);

  it('step complete revives a task in error: the dependent step runs on the given result and the task completes', async () => {
    // always_fails: doomed_step exhausts its 3 attempts and the task ends in error with never_runs pending.
    const created = await tasker(['task', 'create', 'resilience/always_fails@1.0.0', '--wait', '--url', url]);
    expect(created.code).toBe(1);
    const taskUuid = /task ([0-9a-f-]{36}) error/.exec(created.stdout)?.[1] ?? '';
    expect(taskUuid).not.toBe('');
    const fixed = await tasker([
      'step',
      'complete',
      taskUuid,
      'doomed_step',
      '--result',
      '{"value": 7}',
      '--reason',
      'done by hand',
      '--url',
      url,
    ]);
    expect(fixed.stderr).toBe('');
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toMatch(/doomed_step\s+complete/);
    const deadline = Date.now() + 20_000;
    let view: { status: string; steps: { name: string; result: unknown }[] } = { status: '', steps: [] };
    while (Date.now() < deadline) {
      const got = await tasker(['task', 'get', taskUuid, '--json', '--url', url]);
      view = JSON.parse(got.stdout) as typeof view;
      if (view.status === 'complete') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(view.status).toBe('complete');
    // Resilience.Echo passes its dependency's result on: the operator's value reached the dependent.
    expect(view.steps.find((s) => s.name === 'never_runs')?.result).toEqual({ echoed: { value: 7 } });
    const again = await tasker(['step', 'reset', taskUuid, 'doomed_step', '--url', url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[TASKER_STEP_ACTION_NOT_ALLOWED]');
  });

  it('worker list shows the live worker from the registry; tasker worker stays the service command', async () => {
    const worker = processes[1];
    const listed = await tasker(['worker', 'list', '--url', url]);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^WORKER\s+HOST\s+NAMESPACES\s+CAPACITY\s+VERSION\s+HEARTBEAT/);
    expect(listed.stdout).toMatch(
      new RegExp(
        `\\S+-${worker?.pid}-worker-\\S+\\s+\\S+\\s+math,resilience\\s+\\d+\\s+\\d+\\.\\d+\\.\\d+\\S*\\s+\\d+\\.\\d+s ago`,
      ),
    );
    const json = await tasker(['worker', 'list', '--json', '--url', url]);
    const answer = JSON.parse(json.stdout) as {
      workers: { pid: number; namespaces: string[]; heartbeat_age_seconds: number }[];
    };
    expect(answer.workers).toHaveLength(1);
    expect(answer.workers[0]).toMatchObject({ pid: worker?.pid, namespaces: ['math', 'resilience'] });
    expect(answer.workers[0]?.heartbeat_age_seconds).toBeLessThan(30);
    // An operand that is not a subcommand still goes to the service command, which takes none.
    const stray = await tasker(['worker', 'lsit']);
    expect(stray.code).toBe(1);
    expect(stray.stderr).toContain("too many arguments for 'worker'");
  }, 120_000);

  it('unknown tasks and unreachable servers are one clear line each', async () => {
    const missing = await tasker(['task', 'get', '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6a', '--url', url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^✗ .*\[TASKER_TASK_NOT_FOUND\]\n$/);
    const down = await tasker(['task', 'list', '--url', 'http://127.0.0.1:9']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(
      /^✗ cannot reach the Tasker server at http:\/\/127\.0\.0\.1:9 .*\[TASKER_SERVER_UNREACHABLE\]\n$/,
    );
  });
});
