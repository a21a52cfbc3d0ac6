/**
 * `tasker dev` when something goes wrong at start: it says why and exits 1 instead of hanging, runs a task at
 * start only when its own worker serves it, and holds its embedded database folder against a second process.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/tasker.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/templates/', import.meta.url));

interface RunResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

const ENV = { ...process.env, DATABASE_URL: '', TASKER_ENV: 'test' };

/** A hang shows as code 'SIGTERM' (the timeout's kill), never as 1. */
function tasker(args: string[], timeout = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: ENV, timeout }, (error, stdout, stderr) => {
      const code = error === null ? 0 : (error.signal ?? (typeof error.code === 'number' ? error.code : 1));
      resolve({ code, stdout, stderr });
    });
  });
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tasker-dev-failures-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const folder = (name: string): string => join(root, name);

describe('tasker dev exits 1 with the reason on a start-up failure', () => {
  it('an invalid template', async () => {
    const templates = folder('bad-templates');
    mkdirSync(templates);
    writeFileSync(join(templates, 'bad.yaml'), 'name: x\nnamespace_name: y\nversion: 1.0.0\nsteps: 3\n');
    for (const once of [['--once'], []]) {
      const run = await tasker([
        'dev',
        ...once,
        '--port',
        '0',
        '--database-url',
        `pglite:${folder(`db-bad-${once.length}`)}`,
        '--templates',
        templates,
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /bad\.yaml:4:8: steps: must be a list of steps.*\[TASKER_INVALID_TEMPLATE\]/s,
      );
    }
  }, 150_000);

  it('a port in use', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const run = await tasker([
        'dev',
        '--port',
        String(port),
        '--database-url',
        `pglite:${folder('db-port')}`,
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}.*\\[TASKER_LISTEN_FAILED\\]`),
      );
      // The folder is released on the way out: the next start takes it.
      expect(existsSync(join(folder('db-port'), 'tasker.lock'))).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 90_000);

  it('own templates without the sample: no task at start, said clearly; --task of an unserved template fails', async () => {
    const templates = folder('own-templates');
    mkdirSync(templates);
    copyFileSync(join(EXAMPLES, 'linear.yaml'), join(templates, 'linear.yaml'));
    const db = `pglite:${folder('db-own')}`;
    const plain = await tasker([
      'dev',
      '--once',
      '--port',
      '0',
      '--database-url',
      db,
      '--templates',
      templates,
    ]);
    expect(plain.stderr).toBe('');
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('complex_dag"');
    expect(plain.stdout).toContain(
      'No task run at start: the loaded templates (math/mathematical_sequence@1.0.0) do not include the sample math/complex_dag',
    );
    expect(plain.stdout).toContain('--task math/mathematical_sequence');

    const unserved = await tasker([
      'dev',
      '--port',
      '0',
      '--database-url',
      db,
      '--templates',
      templates,
      '--task',
      'math/diamond_pattern',
    ]);
    expect(unserved.code).toBe(1);
    expect(unserved.stderr).toMatch(
      /--task math\/diamond_pattern is not one of the templates this dev worker serves \(math\/mathematical_sequence@1\.0\.0\).*\[TASKER_TEMPLATE_NOT_FOUND\]/,
    );

    const served = await tasker([
      'dev',
      '--once',
      '--port',
      '0',
      '--database-url',
      db,
      '--templates',
      templates,
      '--task',
      'math/mathematical_sequence',
      '--context',
      '{"even_number": 2}',
    ]);
    expect(served.stderr).toBe('');
    expect(served.stdout).toMatch(/✓ task [0-9a-f-]{36} complete/);
    expect(served.code).toBe(0);

    // Run again with the same context (after fixing a handler, say): a new task, not a duplicate of the last.
    const again = await tasker([
      'dev',
      '--once',
      '--port',
      '0',
      '--database-url',
      db,
      '--templates',
      templates,
      '--task',
      'math/mathematical_sequence',
      '--context',
      '{"even_number": 2}',
    ]);
    expect(again.stderr).toBe('');
    expect(again.stdout).toMatch(/✓ task [0-9a-f-]{36} complete/);
    const [firstTask, secondTask] = [served, again].map(
      (run) => /✓ task ([0-9a-f-]{36})/.exec(run.stdout)?.[1],
    );
    expect(secondTask).not.toBe(firstTask);
    expect(again.code).toBe(0);
  }, 240_000);
});

describe('the embedded database folder', () => {
  let first: ChildProcess | undefined;
  afterAll(() => {
    if (first?.exitCode === null) first.kill('SIGKILL');
  });

  it('shows failures of tasks it did not start; a second tasker dev on the same folder fails at once, naming the folder and the holder', async () => {
    const data = folder('db-shared');
    first = spawn(
      process.execPath,
      [BIN, 'dev', '--no-sample', '--port', '0', '--database-url', `pglite:${data}`],
      {
        env: ENV,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const running = first;
    let seen = '';
    running.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
    });
    const api = await new Promise<string>((resolve, reject) => {
      running.stdout?.on('data', () => {
        const url = /REST API at (http:\/\/127\.0\.0\.1:\d+)/.exec(seen)?.[1];
        if (url !== undefined) resolve(url);
      });
      running.once('exit', (code) => reject(new Error(`first tasker dev exited ${code}: ${seen}`)));
    });

    // A task this dev process did not start: its failures show on the screen all the same.
    const created = await fetch(`${api}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'resilience', name: 'always_fails' }),
    });
    expect(created.status).toBe(201);
    const { task_uuid: taskUuid } = (await created.json()) as { task_uuid: string };
    const deadline = Date.now() + 30_000;
    while (!seen.includes('attempt 3/3, no retry') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toContain(
      `✗ resilience task ${taskUuid}: step doomed_step failed (attempt 1/3, will retry): retryable_error:`,
    );
    expect(seen).toContain(`✗ resilience task ${taskUuid}: step doomed_step failed (attempt 3/3, no retry)`);

    const second = await tasker(['dev', '--once', '--port', '0', '--database-url', `pglite:${data}`], 30_000);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(
      `the embedded database folder ${data} is in use by process ${running.pid}`,
    );
    expect(second.stderr).toContain('[TASKER_DATABASE_LOCKED]');
    expect(second.stdout).not.toContain('Schema at version');

    const exited = new Promise<number | null>((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(join(data, 'tasker.lock'))).toBe(false);
  }, 120_000);

  it('takes over the lock of a process that is gone', async () => {
    const data = folder('db-stale');
    mkdirSync(data);
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.once('exit', resolve));
    writeFileSync(join(data, 'tasker.lock'), `${dead.pid}\n`);
    const run = await tasker([
      'dev',
      '--once',
      '--no-sample',
      '--port',
      '0',
      '--database-url',
      `pglite:${data}`,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Schema at version');
    expect(existsSync(join(data, 'tasker.lock'))).toBe(false);
  }, 90_000);

  it('a folder PGlite cannot open gets the error with the fix, not a hang', async () => {
    const data = folder('db-broken');
    mkdirSync(data);
    // A data folder of a PostgreSQL version PGlite does not run, with nothing else in it.
    writeFileSync(join(data, 'PG_VERSION'), '99\n');
    const run = await tasker(['dev', '--port', '0', '--database-url', `pglite:${data}`], 30_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`the embedded database in ${data} cannot be opened`);
    expect(run.stderr).toContain(`delete the folder (its data is lost): rm -rf ${data}`);
    expect(readFileSync(join(data, 'PG_VERSION'), 'utf8')).toBe('99\n');
    expect(existsSync(join(data, 'tasker.lock'))).toBe(false);
  }, 60_000);
});
