import type { Queryable } from '../database.ts';

/**
 * Deletes up to `limit` tasks that reached a terminal state more than `olderThanSeconds` ago (by the database's
 * clock), with their steps, edges, transitions, audit rows and resolved DLQ entries (tasker.purge_finished_tasks).
 * Tasks with a pending DLQ entry and unfinished tasks are never deleted. One commit; returns how many went.
 */
export async function purgeFinishedTasks(
  db: Queryable,
  olderThanSeconds: number,
  limit: number,
): Promise<number> {
  const { rows } = await db.query<{ deleted: number }>(
    'SELECT tasker.purge_finished_tasks(now() - make_interval(secs => $1), $2) AS deleted',
    [olderThanSeconds, limit],
    { name: 'tasker_purge_finished_tasks' },
  );
  return rows[0]?.deleted ?? 0;
}

/**
 * Deletes, from every queue's archive, up to `limit` rows archived more than `olderThanSeconds` ago
 * (tasker.purge_queue_archives). Live messages are never touched. Returns the rows deleted per queue.
 */
export async function purgeQueueArchives(
  db: Queryable,
  olderThanSeconds: number,
  limit: number,
): Promise<Map<string, number>> {
  const { rows } = await db.query<{ queue_name: string; deleted: number }>(
    'SELECT queue_name, deleted FROM tasker.purge_queue_archives(now() - make_interval(secs => $1), $2)',
    [olderThanSeconds, limit],
    { name: 'tasker_purge_queue_archives' },
  );
  return new Map(rows.map((row) => [row.queue_name, row.deleted]));
}
