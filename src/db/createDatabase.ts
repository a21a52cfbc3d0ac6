import pg from 'pg';
import { redactUrl } from '../domain/secretRedaction.ts';
import { sqlStateOf } from './sqlState.ts';
import { DatabaseError } from '../domain/errors.ts';

const DUPLICATE_DATABASE = '42P04';

/**
 * Creates the database a postgres:// URL names when it does not exist yet, by connecting to the server's
 * `postgres` database. Returns true when it created one.
 */
export async function ensureDatabaseExists(url: string): Promise<boolean> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (name === '') return false;
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    return false;
  } catch (error) {
    if (sqlStateOf(error) !== '3D000') {
      const reason = error instanceof Error ? error.message : String(error);
      throw new DatabaseError(
        'TASKER_DATABASE_UNAVAILABLE',
        `cannot reach the database at ${redactUrl(url)}: ${reason}. Check that PostgreSQL is running and DATABASE_URL is right.`,
        { cause: error },
      );
    }
  } finally {
    await probe.end().catch(() => undefined);
  }
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  try {
    await client.connect();
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
    return true;
  } catch (error) {
    if (sqlStateOf(error) === DUPLICATE_DATABASE) return false;
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseError(
      'TASKER_DATABASE_UNAVAILABLE',
      `database ${redactUrl(url)} does not exist and could not be created: ${reason}. Create it yourself or grant CREATEDB.`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
