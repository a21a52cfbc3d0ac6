import type { LoadedConfig } from '../config/loadConfig.ts';
import { poolOptions } from './runtimeOptions.ts';
import type { Database } from '../db/database.ts';
import { assertSchemaCurrent } from '../db/migrate.ts';
import { openDatabase } from '../db/openDatabase.ts';

/**
 * The database of a service: its pool from `[database]`, and a schema that is exactly this Tasker's. A service
 * never migrates on its own (several replicas would race a deploy): `npx tasker migrate` does.
 * @throws DatabaseError TASKER_DATABASE_UNAVAILABLE, TASKER_SCHEMA_NOT_MIGRATED, TASKER_SCHEMA_TOO_NEW,
 *   TASKER_MIGRATION_CHANGED
 */
export async function openServiceDatabase(loaded: LoadedConfig, url?: string): Promise<Database> {
  const db = await openDatabase(url ?? loaded.config.database.url, poolOptions(loaded.config));
  try {
    await assertSchemaCurrent(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}
