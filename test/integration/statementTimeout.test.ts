/**
 * `[database] statement_timeout_ms` and `idle_in_transaction_timeout_ms` bound every statement and transaction
 * of a service's pool on the server itself: a statement that runs past the bound is cancelled by PostgreSQL (it
 * does not go on after the client stops waiting) and fails with TASKER_STATEMENT_TIMEOUT naming the key; the
 * connection stays usable. The services' pools get both from the configuration; migrations are exempt.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loadConfig.ts';
import { createHash } from 'node:crypto';
import { migrate } from '../../src/db/migrate.ts';
import { loadSchemaSource } from '../../src/db/schemaFiles.ts';
import { poolOptions } from '../../src/services/runtimeOptions.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

describe('statement and idle-in-transaction timeouts', () => {
  const testDb = useTestDatabase();

  it('cancels a statement past statement_timeout_ms on the server and says which key bounds it', async () => {
    const db = testDb().openPool({ maxConnections: 1, statementTimeoutMs: 300 });
    try {
      const started = performance.now();
      const error = await db.query("SELECT pg_sleep(5), 'tasker-timeout-probe'").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(performance.now() - started).toBeLessThan(4_000);
      expect(error).toMatchObject({
        code: 'TASKER_STATEMENT_TIMEOUT',
        details: { statement_timeout_ms: 300 },
      });
      expect((error as Error).message).toMatch(/\[database\] statement_timeout_ms \(300 ms\)/);
      // Cancelled on the server: nothing of it is still running there.
      const running = await testDb().db.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%tasker-timeout-probe%' AND pid <> pg_backend_pid()",
      );
      expect(running.rows).toEqual([{ n: 0 }]);
      // The one connection of the pool is still good.
      expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });

  it('gives the services their pool bounds from [database]', async () => {
    const { config } = loadConfig({ env: { TASKER_ENV: 'test' } });
    expect(poolOptions(config)).toMatchObject({
      statementTimeoutMs: 30_000,
      idleInTransactionTimeoutMs: 60_000,
    });
    const db = testDb().openPool({
      ...poolOptions(config),
      statementTimeoutMs: 250,
      idleInTransactionTimeoutMs: 400,
    });
    try {
      const settings = await db.query<{ statement: string; idle: string }>(
        "SELECT current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle",
      );
      expect(settings.rows).toEqual([{ statement: '250ms', idle: '400ms' }]);
    } finally {
      await db.close();
    }
  });
});

describe('migrations under a pool with a statement timeout', () => {
  const fresh = useTestDatabase({ migrated: false });

  it('run to the end although a statement takes longer than the bound', async () => {
    const db = fresh().openPool({ statementTimeoutMs: 150 });
    try {
      const source = loadSchemaSource();
      const last = Math.max(...source.migrations.map((m) => m.version));
      const sql = 'SELECT pg_sleep(0.4);';
      source.migrations.push({
        version: last + 1,
        name: 'slow_statement',
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      });
      // The same statement outside a migration is cancelled at the bound.
      await expect(db.query('SELECT pg_sleep(0.4)')).rejects.toMatchObject({
        code: 'TASKER_STATEMENT_TIMEOUT',
      });
      const report = await migrate(db, source);
      expect(report.current).toBe(last + 1);
    } finally {
      await db.close();
    }
  });
});
