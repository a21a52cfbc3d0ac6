import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DatabaseError } from '../domain/errors.ts';

/**
 * The two kinds of schema source the migrator applies:
 * - numbered migrations (`migrations/NNNN_words.sql`): tables, indexes, types, triggers and data moves, each
 *   applied once and never edited after it lands;
 * - function files (`src/db/sql/*.sql`): the current `CREATE OR REPLACE` of every SQL function, edited in place
 *   like any source file and re-applied whenever its checksum changes (Flyway's repeatable migrations).
 */

/** `migrations/` at the package root, found from this file in both src/ (tsx) and dist/ (built). */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** `src/db/sql/`: the build does not copy .sql files, and the package ships src/, so dist/ finds them there. */
export const DEFAULT_FUNCTIONS_DIR = fileURLToPath(new URL('../../src/db/sql/', import.meta.url));

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const FUNCTION_FILE = /^[a-z0-9_]+\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface FunctionFile {
  /** File name, e.g. `claim_steps.sql`: the key its checksum is recorded under. */
  file: string;
  sql: string;
  checksum: string;
}

/** Everything one build of Tasker applies to a database. */
export interface SchemaSource {
  migrations: Migration[];
  functions: FunctionFile[];
}

const checksumOf = (sql: string): string => createHash('sha256').update(sql).digest('hex');

const sqlFilesIn = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.sql$/i.test(entry.name))
    .map((entry) => entry.name);

export function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Migration[] {
  const migrations = sqlFilesIn(dir)
    .map((file): Migration => {
      const match = MIGRATION_FILE.exec(file);
      if (match === null) {
        throw new DatabaseError(
          'TASKER_MIGRATION_FAILED',
          `migration file ${file} is misnamed: name it NNNN_lowercase_words.sql (for example 0003_add_tasks.sql)`,
        );
      }
      const sql = readFileSync(`${dir}/${file}`, 'utf8');
      return { version: Number(match[1]), name: match[2] ?? file, sql, checksum: checksumOf(sql) };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new DatabaseError(
        'TASKER_MIGRATION_FAILED',
        `migrations must be numbered 0001, 0002, ... without gaps or repeats; found ${migrationLabel(migration)}.sql at position ${index + 1}`,
      );
    }
  });
  return migrations;
}

/** Function files in name order (the order does not matter to PostgreSQL: bodies are checked at run time). */
export function loadFunctionFiles(dir: string = DEFAULT_FUNCTIONS_DIR): FunctionFile[] {
  return sqlFilesIn(dir)
    .sort()
    .map((file): FunctionFile => {
      if (!FUNCTION_FILE.test(file)) {
        throw new DatabaseError(
          'TASKER_MIGRATION_FAILED',
          `function file ${file} is misnamed: name it lowercase_words.sql (for example claim_steps.sql)`,
        );
      }
      const sql = readFileSync(`${dir}/${file}`, 'utf8');
      return { file, sql, checksum: checksumOf(sql) };
    });
}

export function loadSchemaSource(
  migrationsDir: string = DEFAULT_MIGRATIONS_DIR,
  functionsDir: string = DEFAULT_FUNCTIONS_DIR,
): SchemaSource {
  return { migrations: loadMigrations(migrationsDir), functions: loadFunctionFiles(functionsDir) };
}

export const migrationLabel = (m: { version: number; name: string }): string =>
  `${String(m.version).padStart(4, '0')}_${m.name}`;
