import type { Database } from './database.ts';
import { isPgliteUrl, redactUrl } from './connectionString.ts';
import { PgliteDatabase } from './pgliteDatabase.ts';
import { PostgresDatabase } from './postgresDatabase.ts';
import type { PostgresPoolOptions } from './postgresDatabase.ts';
import { ValidationError } from '../domain/errors.ts';

/**
 * Opens the database a URL names: `postgres://` / `postgresql://` for a PostgreSQL server, `pglite:<folder>`
 * or `pglite:memory` for the embedded database.
 */
export async function openDatabase(url: string, options: PostgresPoolOptions = {}): Promise<Database> {
  if (isPgliteUrl(url)) return PgliteDatabase.open(url);
  if (/^postgres(ql)?:\/\//i.test(url)) return new PostgresDatabase(url, options);
  throw new ValidationError(
    'TASKER_DATABASE_URL_INVALID',
    `DATABASE_URL "${redactUrl(url)}" is not a database URL: use postgres://user@host:5432/dbname, or pglite:<folder> for the embedded database`,
  );
}
