import type { Command } from 'commander';
import { isPgliteUrl } from '../db/connectionString.ts';
import type { Database } from '../db/database.ts';
import { ensureDatabaseExists } from '../db/createDatabase.ts';
import { openDatabase } from '../db/openDatabase.ts';
import type { PostgresPoolOptions } from '../db/postgresDatabase.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import { poolOptions } from '../services/runtimeOptions.ts';

export interface DatabaseOptions {
  databaseUrl?: string;
}

export function addDatabaseOption(command: Command): Command {
  return command.option(
    '-d, --database-url <url>',
    'database to use: postgres://... or pglite:<folder> (default: database.url of the configuration, which DATABASE_URL overrides)',
  );
}

/** Precedence: --database-url, then the configuration (where DATABASE_URL / DATABASE_URL_FILE win over files). */
export function resolveDatabase(
  options: DatabaseOptions,
  loaded: LoadedConfig = loadConfig(),
): { url: string; pool: PostgresPoolOptions } {
  return { url: options.databaseUrl ?? loaded.config.database.url, pool: poolOptions(loaded.config) };
}

/** Opens the database, first creating it on the server when it does not exist yet. */
export async function openCreatingDatabase(
  url: string,
  pool: PostgresPoolOptions,
): Promise<{ db: Database; created: boolean }> {
  const created = isPgliteUrl(url) ? false : await ensureDatabaseExists(url);
  return { db: await openDatabase(url, pool), created };
}
