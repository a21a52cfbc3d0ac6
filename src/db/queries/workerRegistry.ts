import type { Queryable } from '../database.ts';

/**
 * A worker is live while its heartbeat is younger than this: three heartbeat intervals, so one late or lost
 * heartbeat (a busy event loop, a database hiccup) does not make it look gone.
 */
export const WORKER_HEARTBEAT_INTERVAL_MS = 10_000;
const LIVE_SECONDS = (3 * WORKER_HEARTBEAT_INTERVAL_MS) / 1000;
/** Rows of workers gone this long are deleted by the next worker that starts: nobody asks about them. */
const FORGET_AFTER_SECONDS = 24 * 3600;

export interface WorkerRegistration {
  workerId: string;
  namespaces: readonly string[];
  hostname: string;
  pid: number;
  capacity: number;
  version: string;
}

/** Records (or refreshes) the worker's heartbeat for each of its namespaces. One statement, off the hot path. */
export async function recordWorkerHeartbeat(db: Queryable, worker: WorkerRegistration): Promise<void> {
  await db.query(
    `INSERT INTO tasker.worker_namespaces (worker_id, namespace, hostname, pid, capacity, version)
     SELECT $1, ns, $3, $4, $5, $6 FROM unnest($2::text[]) AS ns
     ON CONFLICT (worker_id, namespace) DO UPDATE SET heartbeat_at = now(), capacity = EXCLUDED.capacity`,
    [worker.workerId, [...worker.namespaces], worker.hostname, worker.pid, worker.capacity, worker.version],
  );
}

/** Deletes rows of workers long gone (a killed worker cannot remove its own). */
export async function forgetGoneWorkers(db: Queryable): Promise<void> {
  await db.query(
    `DELETE FROM tasker.worker_namespaces WHERE heartbeat_at < now() - make_interval(secs => $1)`,
    [FORGET_AFTER_SECONDS],
  );
}

/** A stopping worker's rows go at once, so it is not counted as live for the next three intervals. */
export async function removeWorker(db: Queryable, workerId: string): Promise<void> {
  await db.query(`DELETE FROM tasker.worker_namespaces WHERE worker_id = $1`, [workerId]);
}

/** The namespaces, among `namespaces`, that a live worker serves. */
export async function servedNamespaces(db: Queryable, namespaces: readonly string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ namespace: string }>(
    `SELECT DISTINCT namespace FROM tasker.worker_namespaces
     WHERE namespace = ANY($1::text[]) AND heartbeat_at > now() - make_interval(secs => $2)`,
    [[...namespaces], LIVE_SECONDS],
  );
  return new Set(rows.map((row) => row.namespace));
}

export interface LiveWorker {
  worker_id: string;
  hostname: string;
  pid: number;
  capacity: number;
  version: string;
  namespaces: string[];
  started_at: Date;
  heartbeat_at: Date;
  /** Measured by the database's clock, as heartbeat_at is: a skewed client clock cannot distort it. */
  heartbeat_age_seconds: number;
}

/** Live workers, one row each with the namespaces it serves. */
export async function listLiveWorkers(db: Queryable): Promise<LiveWorker[]> {
  const { rows } = await db.query<LiveWorker>(
    `SELECT worker_id, min(hostname) AS hostname, min(pid) AS pid, max(capacity) AS capacity,
            min(version) AS version, array_agg(namespace ORDER BY namespace) AS namespaces,
            min(started_at) AS started_at, max(heartbeat_at) AS heartbeat_at,
            round(extract(epoch FROM now() - max(heartbeat_at))::numeric, 1)::float8 AS heartbeat_age_seconds
     FROM tasker.worker_namespaces
     WHERE heartbeat_at > now() - make_interval(secs => $1)
     GROUP BY worker_id ORDER BY min(started_at)`,
    [LIVE_SECONDS],
  );
  return rows;
}

/**
 * Namespaces with unfinished tasks and no live worker: the work that waits for a worker nobody runs. Reads
 * the unfinished tasks through their partial index (tasks_active_idx), so its cost grows with the work in
 * flight, not with the table (health detail, not a hot path).
 */
export async function namespacesWithoutWorkers(
  db: Queryable,
): Promise<{ namespace: string; unfinished_tasks: number }[]> {
  const { rows } = await db.query<{ namespace: string; unfinished_tasks: number }>(
    `SELECT ns.name AS namespace, count(*)::integer AS unfinished_tasks
     FROM tasker.tasks t
     JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
     JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
     WHERE t.current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
       AND NOT EXISTS (SELECT 1 FROM tasker.worker_namespaces w
                       WHERE w.namespace = ns.name AND w.heartbeat_at > now() - make_interval(secs => $1))
     GROUP BY ns.name ORDER BY ns.name`,
    [LIVE_SECONDS],
  );
  return rows;
}
