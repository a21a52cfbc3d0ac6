import { execFileSync } from 'node:child_process';

/**
 * `pg_dump -s` of a database, normalised so that two databases with the same schema give the same text
 * whatever their names, owners or the pg_dump run: comments, SET lines, ownership, privileges, the random
 * `\restrict` keys of recent pg_dump releases and blank lines are left out.
 */
export function dumpSchema(url: string): string {
  let dump: string;
  try {
    dump = execFileSync('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', '--dbname', url], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    throw new Error(
      `pg_dump failed (the schema tests need PostgreSQL's client tools on PATH, e.g. Debian's postgresql-client): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return `${dump
    .split('\n')
    .filter((line) => !/^(--|SET |SELECT pg_catalog\.set_config|\\restrict|\\unrestrict)/.test(line))
    .filter((line) => line.trim() !== '')
    .join('\n')}\n`;
}

/** The major version of the pg_dump on PATH: dumps differ slightly between majors. */
export function pgDumpMajor(): number {
  const version = execFileSync('pg_dump', ['--version'], { encoding: 'utf8' });
  return Number(/(\d+)\.\d+/.exec(version)?.[1] ?? 0);
}
