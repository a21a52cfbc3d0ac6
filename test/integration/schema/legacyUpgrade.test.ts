/**
 * Upgrade from the old layout: a database migrated by the migrations that landed through 0019 (kept as a fixture
 * in test/fixtures/legacy-migrations, applied as the old migrator did), with a task in flight, is upgraded by
 * `migrate` in one transaction. Afterwards its schema dumps exactly as a fresh install's, and the task in flight
 * finishes through the new functions.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { assertSchemaCurrent, migrate, schemaStatus } from '../../../src/db/migrate.ts';
import { claimSteps } from '../../../src/db/queries/claimSteps.ts';
import { completeManyAndClaim } from '../../../src/db/queries/completeStep.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { DatabaseError } from '../../../src/domain/errors.ts';
import { templateNamed } from '../../helpers/engine/fixtures.ts';
import { dumpSchema } from '../../helpers/schemaDump.ts';
import { createTestDatabase } from '../../helpers/testDatabase.ts';
import type { TestDatabase } from '../../helpers/testDatabase.ts';

const LEGACY_DIR = fileURLToPath(new URL('../../fixtures/legacy-migrations/', import.meta.url));

/** What the old migrator did: every file in one transaction, each recorded with its sha256. */
async function migrateLegacy(db: Database, upTo = Infinity): Promise<void> {
  const files = readdirSync(LEGACY_DIR)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .filter((file) => Number(file.slice(0, 4)) <= upTo);
  expect(files.length).toBeGreaterThan(0);
  await db.transaction(async (tx) => {
    await tx.exec(`
      CREATE SCHEMA IF NOT EXISTS tasker;
      CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      );`);
    for (const file of files) {
      const sql = readFileSync(`${LEGACY_DIR}/${file}`, 'utf8');
      await tx.exec(sql);
      await tx.query('INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        Number(file.slice(0, 4)),
        file.slice(5, -4),
        createHash('sha256').update(sql).digest('hex'),
      ]);
    }
  });
}

const open: TestDatabase[] = [];
async function emptyDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase({ migrated: false });
  open.push(database);
  return database;
}
afterAll(async () => {
  await Promise.all(open.map((database) => database.drop()));
});

/** A linear four-step task created through the old layout's tasker.create_task. */
async function createLegacyTask(
  db: Database,
  namedTaskUuid: string,
): Promise<{ task: string; steps: string[] }> {
  const steps = [1, 2, 3, 4].map(() => randomUUID());
  const common = {
    handler_callable: 'Math.SquarePrevious',
    inputs: {},
    retryable: true,
    max_attempts: 3,
    backoff_strategy: 'exponential',
    backoff_base_ms: 1000,
    max_backoff_ms: 30000,
    timeout_seconds: null,
  };
  const { rows } = await db.query<{ task_uuid: string }>(
    'SELECT task_uuid FROM tasker.create_task($1::jsonb, $2::jsonb, $3::jsonb, NULL)',
    [
      JSON.stringify({
        named_task_uuid: namedTaskUuid,
        namespace_name: 'math',
        context: { even_number: 2 },
        identity_hash: randomUUID(),
        correlation_id: randomUUID(),
        tags: [],
        priority: 0,
        initiator: 'legacyUpgrade.test',
      }),
      JSON.stringify(
        steps.map((uuid, i) => ({ ...common, workflow_step_uuid: uuid, name: `linear_step_${i + 1}` })),
      ),
      JSON.stringify(steps.slice(1).map((to, i) => ({ from: steps[i], to }))),
    ],
  );
  return { task: rows[0]?.task_uuid ?? '', steps };
}

describe('upgrade from the old migration layout (0001-0019)', () => {
  it('one migrate upgrades it; its schema then equals a fresh install; a task in flight completes', async () => {
    const legacy = await emptyDatabase();
    await migrateLegacy(legacy.db);
    const template = templateNamed('mathematical_sequence');
    const namedTask = await registerTemplate(legacy.db, template);
    const { task, steps } = await createLegacyTask(legacy.db, namedTask);
    // The first step is claimed (leased) by a worker of the old release when the upgrade happens.
    const [claimed] = await claimSteps(legacy.db, 'math', 'old-worker', 30, 1);
    expect(claimed?.stepUuid).toBe(steps[0]);

    const status = await schemaStatus(legacy.db);
    expect(status.legacyLayout).toBe(true);
    await expect(assertSchemaCurrent(legacy.db)).rejects.toMatchObject({
      code: 'TASKER_SCHEMA_NOT_MIGRATED',
    });

    const report = await migrate(legacy.db);
    expect(report.legacyLayout).toBe(true);
    expect(report.appliedFunctions.length).toBeGreaterThan(10);
    await expect(assertSchemaCurrent(legacy.db)).resolves.toBeUndefined();
    expect((await migrate(legacy.db)).appliedFunctions).toEqual([]);

    // The same queues on a fresh install, then the two schemas side by side.
    const fresh = await emptyDatabase();
    await migrate(fresh.db);
    await registerTemplate(fresh.db, template);
    expect(dumpSchema(legacy.url)).toBe(dumpSchema(fresh.url));

    // The claim taken before the upgrade stays valid: the worker's result is stored by the new functions, and
    // the rest of the chain follows through them.
    let current = claimed;
    for (let i = 0; i < 4; i++) {
      expect(current?.stepUuid).toBe(steps[i]);
      if (current === undefined) break;
      const { outcomes, claimed: next } = await completeManyAndClaim(
        legacy.db,
        [
          {
            taskUuid: task,
            stepUuid: current.stepUuid,
            attempt: current.attempt,
            success: true,
            payload: { i },
            executionMs: 1,
          },
        ],
        { workerId: 'old-worker', inline: true, namespace: 'math', leaseSeconds: 30, limit: 1 },
      );
      expect(outcomes.get(current.stepUuid)).toBe('complete');
      current = next[0];
    }
    const { rows } = await legacy.db.query<{ current_state: string }>(
      'SELECT current_state FROM tasker.tasks WHERE task_uuid = $1',
      [task],
    );
    expect(rows[0]?.current_state).toBe('complete');
  });

  it('a database the old layout left before 0019 is refused with what to do, and nothing changes', async () => {
    const legacy = await emptyDatabase();
    await migrateLegacy(legacy.db, 18);
    const before = dumpSchema(legacy.url);
    const error = await migrate(legacy.db).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'TASKER_SCHEMA_LEGACY', details: { current: 18, required: 19 } });
    expect((error as Error).message).toContain('only up to version 18');
    expect(dumpSchema(legacy.url)).toBe(before);
  });
});
