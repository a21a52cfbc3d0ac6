/**
 * `[database] listen_url` unreachable: the error names that URL (password hidden) and the key to check, not the
 * main URL and DATABASE_URL, which work.
 */
import { describe, expect, it } from 'vitest';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

describe('a LISTEN URL that cannot be reached', () => {
  const testDb = useTestDatabase();

  it('is named in the error, with the key to fix', async () => {
    const db = new PostgresDatabase(testDb().url, {
      listenUrl: 'postgres://listener:s3cret@127.0.0.1:1/tasker',
      applicationName: 'tasker-test',
    });
    try {
      expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      const error = await db
        .openListenConnection(
          { onNotification: () => undefined, onLost: () => undefined },
          { connectTimeoutMs: 2_000 },
        )
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TASKER_DATABASE_UNAVAILABLE', details: { connection: 'listen' } });
      const message = (error as Error).message;
      expect(message).toContain('for LISTEN at postgres://listener:***@127.0.0.1:1/tasker');
      expect(message).toContain('[database] listen_url');
      expect(message).not.toContain('DATABASE_URL');
      expect(message).not.toContain('s3cret');
    } finally {
      await db.close();
    }
  });
});
