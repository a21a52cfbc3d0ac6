/**
 * The orchestration service's start-up warning about autovacuum (src/db/autovacuumCheck.ts), against the real
 * server: it warns exactly when the server runs with autovacuum off. This machine's CI configuration turns it
 * off, so here the warning branch runs; with autovacuum on, the quiet one does.
 */
import { describe, expect, it } from 'vitest';
import { warnWhenAutovacuumOff } from '../../src/db/autovacuumCheck.ts';
import { LOG_LEVEL, createMemoryLogger } from '../helpers/engine/memoryLogger.ts';
import { useBackendDatabase } from '../helpers/testDatabase.ts';

describe('the autovacuum warning', () => {
  const getPostgres = useBackendDatabase('postgres');
  const getPglite = useBackendDatabase('pglite');

  it('is logged once, naming the fix, when PostgreSQL runs with autovacuum off', async () => {
    const db = getPostgres();
    const { rows } = await db.query<{ autovacuum: string }>('SHOW autovacuum');
    const off = rows[0]?.autovacuum === 'off';
    const logs = createMemoryLogger();

    expect(await warnWhenAutovacuumOff(db, logs.logger)).toBe(off);

    const warnings = logs.atLeast(LOG_LEVEL.warn);
    if (off) {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.msg).toMatch(/autovacuum off/);
      expect(warnings[0]?.msg).toMatch(/autovacuum = on/);
      expect(warnings[0]?.msg).toMatch(/VACUUM ANALYZE/);
    } else {
      expect(warnings).toEqual([]);
    }
  });

  it('is not logged for embedded PGlite, which has no autovacuum and a developer-sized database', async () => {
    const logs = createMemoryLogger();
    expect(await warnWhenAutovacuumOff(getPglite(), logs.logger)).toBe(false);
    expect(logs.entries).toEqual([]);
  });
});
