import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/testDatabase.ts';

const BIN = fileURLToPath(new URL('../../bin/tasker.js', import.meta.url));

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `tasker` command in its own process, as a user would. */
function tasker(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, DATABASE_URL: '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('tasker CLI (real processes)', () => {
  it('migrate applies the migrations once, then reports the database up to date', async () => {
    const testDb = await createTestDatabase({ migrated: false });
    try {
      const first = await tasker(['migrate', '--database-url', testDb.url]);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('applied: 0001_schemas_and_types');
      expect(first.stdout).toMatch(/migrated to schema version \d+/);
      const second = await tasker(['migrate'], { DATABASE_URL: testDb.url });
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(/is up to date \(schema version \d+\)/);
      const { rows } = await testDb.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM tasker.schema_migrations',
      );
      expect(rows[0]?.n).toBeGreaterThanOrEqual(2);
    } finally {
      await testDb.drop();
    }
  });

  it('several migrate processes at once all succeed and apply each migration once', async () => {
    const testDb = await createTestDatabase({ migrated: false });
    try {
      const runs = await Promise.all([1, 2, 3].map(() => tasker(['migrate', '-d', testDb.url])));
      expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
      expect(runs.filter((r) => r.stdout.includes('applied: 0001_schemas_and_types'))).toHaveLength(1);
      const { rows } = await testDb.db.query<{ version: number }>(
        'SELECT version FROM tasker.schema_migrations ORDER BY version',
      );
      expect(rows.map((r) => r.version)).toEqual([...Array(rows.length).keys()].map((i) => i + 1));
    } finally {
      await testDb.drop();
    }
  });

  it('an unreachable database gets one clear line, its password redacted, no stack trace', async () => {
    const result = await tasker(['migrate', '-d', 'postgres://app:s3cret-pw@127.0.0.1:1/tasker']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot reach the database at postgres://app:***@127.0.0.1:1/tasker');
    expect(result.stderr).toContain('[TASKER_DATABASE_UNAVAILABLE]');
    expect(result.stderr + result.stdout).not.toContain('s3cret-pw');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it('a URL that is not a database URL says which forms are accepted', async () => {
    const result = await tasker(['queue', 'list', '-d', 'mysql://root:pw@localhost/x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('pglite:<folder>');
    expect(result.stderr).not.toContain(':pw@');
  });

  it('refuses to work on a database that was never migrated, and says what to run', async () => {
    const testDb = await createTestDatabase({ migrated: false });
    try {
      const result = await tasker(['queue', 'list', '-d', testDb.url]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('npx tasker migrate');
      expect(result.stderr).toContain('[TASKER_SCHEMA_NOT_MIGRATED]');
    } finally {
      await testDb.drop();
    }
  });

  it('demo sends, wakes on NOTIFY, claims and archives every message; queue list shows the queue', async () => {
    const testDb = await createTestDatabase();
    try {
      const demo = await tasker(['demo', '-d', testDb.url]);
      expect(demo.code).toBe(0);
      expect(demo.stdout).toContain('6/6 messages delivered exactly once; queue depth now 0');
      const { rows } = await testDb.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pgmq.a_worker_demo_queue',
      );
      expect(rows[0]?.n).toBe(6);
      const list = await tasker(['queue', 'list', '-d', testDb.url]);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/worker_demo_queue\s+0\s+0\s+-\s+6/);
    } finally {
      await testDb.drop();
    }
  });

  it('an unknown command is an error with help, not a crash', async () => {
    const result = await tasker(['frobnicate']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
