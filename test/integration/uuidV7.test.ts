import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/testDatabase.ts';

/** tasker.uuid_generate_v7(), every engine key's default (src/db/sql/identity.sql: its random bits come from random()). */
describe('tasker.uuid_generate_v7', () => {
  const getDb = useTestDatabase();

  it('makes distinct RFC 9562 version 7 UUIDs that start with the current Unix milliseconds', async () => {
    const before = Date.now();
    const { rows } = await getDb().db.query<{ id: string }>(
      'SELECT tasker.uuid_generate_v7()::text AS id FROM generate_series(1, 20000)',
    );
    const after = Date.now();
    const ids = rows.map((row) => row.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const millis = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
      // The database's clock and ours may differ by a little; a second covers it.
      expect(millis).toBeGreaterThanOrEqual(before - 1000);
      expect(millis).toBeLessThanOrEqual(after + 1000);
    }
    // The random part varies in every random position: not stuck at zero, not constant.
    const randomHex = ids.map((id) => id.replace(/-/g, '').slice(13));
    for (let position = 0; position < randomHex[0]!.length; position += 1) {
      if (position === 3) continue; // the variant's first digit, 8 to b
      const digits = new Set(randomHex.map((hex) => hex[position]));
      expect(digits.size, `random hex digit ${position}`).toBe(16);
    }
  });
});
