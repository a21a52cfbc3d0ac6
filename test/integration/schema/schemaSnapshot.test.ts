/**
 * The committed schema snapshot (migrations/snapshot/schema.sql) is what a fresh `tasker migrate` creates:
 * every change to a table, index, type or SQL function shows in review as a diff of that one file.
 * After an intended change: UPDATE_SCHEMA_SNAPSHOT=1 npx vitest run test/integration/schema/schemaSnapshot.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dumpSchema, pgDumpMajor } from '../../helpers/schemaDump.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const SNAPSHOT = fileURLToPath(new URL('../../../migrations/snapshot/schema.sql', import.meta.url));
/** The snapshot is written by this pg_dump major; another major prints some objects differently. */
const SNAPSHOT_PG_DUMP_MAJOR = 15;

describe('schema snapshot', () => {
  const getDb = useTestDatabase();

  it('a freshly migrated database dumps exactly as migrations/snapshot/schema.sql', () => {
    const major = pgDumpMajor();
    expect(
      major,
      `the snapshot was written with pg_dump ${SNAPSHOT_PG_DUMP_MAJOR}; this machine has pg_dump ${major}`,
    ).toBe(SNAPSHOT_PG_DUMP_MAJOR);
    const dump = dumpSchema(getDb().url);
    if (process.env.UPDATE_SCHEMA_SNAPSHOT === '1') writeFileSync(SNAPSHOT, dump);
    const committed = readFileSync(SNAPSHOT, 'utf8');
    expect(
      dump,
      'the migrated schema differs from migrations/snapshot/schema.sql: if the change is intended, regenerate it with UPDATE_SCHEMA_SNAPSHOT=1 npx vitest run test/integration/schema/schemaSnapshot.test.ts and commit the diff',
    ).toBe(committed);
  });
});
