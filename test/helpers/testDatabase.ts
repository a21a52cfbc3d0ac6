import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { PgliteDatabase } from '../../src/db/pgliteDatabase.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import type { PostgresPoolOptions } from '../../src/db/postgresDatabase.ts';
import { migrate } from '../../src/db/migrate.ts';
import { ADMIN_URL, databaseUrl } from './testEnv.ts';

const OBJECT_IN_USE = '55006';

export interface TestDatabase {
  name: string;
  url: string;
  /** A pool on the database, closed by `drop()`. */
  db: Database;
  /** Opens another pool on the same database; closed by `drop()` too. */
  openPool(options?: PostgresPoolOptions): Database;
  /** Closes our pools, fails if any connection to the database is still open (a leak), then drops it. */
  drop(): Promise<void>;
}

function uniqueName(): string {
  return `tasker_t_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
}

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/** Creates a database: a clone of the migrated template, or empty with `{ migrated: false }`. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = uniqueName();
  await withAdmin(async (admin) => {
    const template = options.migrated === false ? 'template0' : inject('templateDatabase');
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(
          `CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${admin.escapeIdentifier(template)}`,
        );
        return;
      } catch (error) {
        // Two files cloning the template at the same instant: PostgreSQL refuses the second; try again.
        if ((error as { code?: string }).code !== OBJECT_IN_USE || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  });
  const url = databaseUrl(name);
  const pools: Database[] = [];
  const openPool = (poolOptions: PostgresPoolOptions = {}): Database => {
    const pool = new PostgresDatabase(url, { applicationName: 'tasker-test', ...poolOptions });
    pools.push(pool);
    return pool;
  };
  const db = openPool();
  let dropped = false;
  return {
    name,
    url,
    db,
    openPool,
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await Promise.all(pools.map((pool) => pool.close()));
      await withAdmin(async (admin) => {
        // A backend exits a moment after its client disconnects; wait briefly before calling it a leak.
        let leaked: { application_name: string; state: string | null; query: string }[] = [];
        for (let i = 0; i < 40; i++) {
          const result = await admin.query<{ application_name: string; state: string | null; query: string }>(
            'SELECT application_name, state, query FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [name],
          );
          leaked = result.rows;
          if (leaked.length === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`);
        if (leaked.length > 0) {
          throw new Error(
            `connection leak: ${leaked.length} connection(s) to ${name} still open after the test closed its pools: ` +
              leaked
                .map((row) => `${row.application_name || '(no name)'} [${row.state ?? '?'}] ${row.query}`)
                .join('; '),
          );
        }
      });
    },
  };
}

/** One database for the whole test file; dropped (and checked for leaks) after the file. */
export function useTestDatabase(options: { migrated?: boolean } = {}): () => TestDatabase {
  let current: TestDatabase | undefined;
  beforeAll(async () => {
    current = await createTestDatabase(options);
  });
  afterAll(async () => {
    await current?.drop();
  });
  return () => {
    if (current === undefined)
      throw new Error('useTestDatabase: the database exists only inside tests and hooks');
    return current;
  };
}

/** An in-memory embedded database, migrated. */
export async function createPgliteDatabase(): Promise<Database> {
  const db = await PgliteDatabase.open('pglite:memory');
  await migrate(db);
  return db;
}

/** The two database backends every queue test runs on. */
export const BACKENDS = ['postgres', 'pglite'] as const;
export type Backend = (typeof BACKENDS)[number];

/** Registers beforeAll/afterAll for a database of the given backend and returns its getter. */
export function useBackendDatabase(backend: Backend): () => Database {
  if (backend === 'postgres') {
    const get = useTestDatabase();
    return () => get().db;
  }
  let db: Database | undefined;
  beforeAll(async () => {
    db = await createPgliteDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });
  return () => {
    if (db === undefined)
      throw new Error('useBackendDatabase: the database exists only inside tests and hooks');
    return db;
  };
}
