import type { Command } from 'commander';
import { DEFAULT_DATABASE_URL, isPgliteUrl } from '../db/connectionString.ts';
import type { Database } from '../db/database.ts';
import { ensureDatabaseExists } from '../db/createDatabase.ts';
import { openDatabase } from '../db/openDatabase.ts';

export interface DatabaseOptions {
  databaseUrl?: string;
}

export function addDatabaseOption(command: Command): Command {
  return command.option(
    '-d, --database-url <url>',
    `database to use: postgres://... or pglite:<folder> (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})`,
  );
}

/** Precedence: --database-url, then DATABASE_URL, then the local development default. */
export function resolveDatabaseUrl(options: DatabaseOptions): string {
  return options.databaseUrl ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
}

/** Opens the database, first creating it on the server when it does not exist yet. */
export async function openCreatingDatabase(url: string): Promise<{ db: Database; created: boolean }> {
  const created = isPgliteUrl(url) ? false : await ensureDatabaseExists(url);
  return { db: await openDatabase(url, { maxConnections: 4 }), created };
}
