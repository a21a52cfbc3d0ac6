import type { Logger } from '../observability/logger.ts';
import type { Database } from './database.ts';

/**
 * Warns when the server runs with autovacuum off. Tasker's queue tables delete every message they deliver and
 * its transition tables flip a flag on every state change: without vacuum their dead rows and index entries
 * pile up, and every queue read walks them. Without analyze, the plans a session keeps for the API's task
 * views were made on the tables' first, small statistics and are never remade as the tables grow. Whether it
 * is off is a fact of the server that the process can only report; a failed check is not worth a failed start.
 * Embedded PGlite (`tasker dev`, `tasker demo`) has no autovacuum and holds a developer's few tasks: no warning.
 * @returns whether the warning was logged.
 */
export async function warnWhenAutovacuumOff(db: Database, logger: Logger): Promise<boolean> {
  if (db.kind === 'pglite') return false;
  let off: boolean;
  try {
    const { rows } = await db.query<{ on: boolean }>("SELECT current_setting('autovacuum')::boolean AS on");
    off = rows[0]?.on === false;
  } catch (error) {
    logger.debug({ err: error }, 'could not read the autovacuum setting');
    return false;
  }
  if (off) {
    logger.warn(
      'PostgreSQL runs with autovacuum off: queue reads and task views will slow down as tables grow. ' +
        "Turn it on (autovacuum = on in postgresql.conf), or VACUUM ANALYZE the tasker and pgmq schemas' tables " +
        'regularly (docs/operations.md, "Queries slow down as tables grow").',
    );
  }
  return off;
}
