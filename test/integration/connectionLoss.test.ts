/**
 * A backend terminated while its connection is checked out of the pool, between two statements (an
 * administrator's pg_terminate_backend, a failover): the next statement fails with a connection error, the
 * connection is discarded, the pool carries on, and the process does not crash on pg's 'error' event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { isConnectionError } from '../../src/db/sqlState.ts';
import { sleep } from '../helpers/engine/wait.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

const getTestDb = useTestDatabase();

describe('losing a checked-out connection', () => {
  let db: Database;
  let admin: Database;
  beforeAll(() => {
    db = getTestDb().openPool({ maxConnections: 2 });
    admin = getTestDb().openPool({ maxConnections: 1 });
  });
  afterAll(async () => {
    await db.close();
    await admin.close();
  });

  const terminate = async (pid: number) => {
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    // Let the FATAL message arrive while no statement is running on that connection.
    await sleep(300);
  };

  it('inside a transaction: the next statement fails as a connection error and the pool recovers', async () => {
    const outcome = await db
      .transaction(async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await terminate(rows[0]?.pid ?? 0);
        await tx.query('SELECT 1');
        return 'committed';
      })
      .catch((error: unknown) => error);
    expect(outcome, String(outcome)).not.toBe('committed');
    expect(isConnectionError(outcome), `${String(outcome)} ${JSON.stringify(outcome)}`).toBe(true);
    for (let i = 0; i < 4; i++)
      expect((await db.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('between statements of an idle pooled connection: later queries get a fresh connection', async () => {
    const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    await terminate(rows[0]?.pid ?? 0);
    for (let i = 0; i < 4; i++) {
      const result = await db.query<{ n: number }>('SELECT 1 AS n').catch((error: unknown) => error);
      // At most the first query may meet the dead connection; none may crash the process.
      if (i > 0) expect(result).toMatchObject({ rows: [{ n: 1 }] });
    }
  });
});
