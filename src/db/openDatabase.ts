import type { Database } from './database.ts';
import { redactUrl } from '../domain/secretRedaction.ts';
import { isPgliteUrl } from './connectionString.ts';
import { PostgresDatabase } from './postgresDatabase.ts';
import type { PostgresPoolOptions } from './postgresDatabase.ts';
import { ValidationError } from '../domain/errors.ts';

/**
 * Opens the database a URL names: `postgres://` / `postgresql://` for a PostgreSQL server, `pglite:<folder>`
 * or `pglite:memory` for the embedded database. PGlite (a WebAssembly PostgreSQL) is loaded only when a URL
 * asks for it: loading it takes about 0.35 s, which every command against a server would otherwise pay.
 */
export async function openDatabase(url: string, options: PostgresPoolOptions = {}): Promise<Database> {
  if (isPgliteUrl(url)) {
    const { PgliteDatabase } = await import('./pgliteDatabase.ts');
    return PgliteDatabase.open(url);
  }
  if (/^postgres(ql)?:\/\//i.test(url)) return new PostgresDatabase(url, options);
  throw new ValidationError(
    'TASKER_DATABASE_URL_INVALID',
    `DATABASE_URL "${redactUrl(url)}" is not a database URL: use postgres://user@host:5432/dbname, or pglite:<folder> for the embedded database`,
  );
}
