/**
 * The dead-letter queue (reference §5.3): an investigation record of tasks the engine gave up on, not a
 * requeue mechanism. Entries are written by the staleness detector (tasker.detect_stale_tasks); operators fix
 * the task's steps (stepActions.ts) and then close the entry here.
 */
import { ConflictError, NotFoundError, ValidationError } from '../../domain/errors.ts';
import type { Queryable, SqlParam } from '../database.ts';

export const DLQ_REASONS = [
  'staleness_timeout',
  'max_retries_exceeded',
  'dependency_cycle_detected',
  'worker_unavailable',
  'manual_dlq',
] as const;

export const DLQ_RESOLUTION_STATUSES = [
  'pending',
  'manually_resolved',
  'permanently_failed',
  'cancelled',
] as const;

/** What a pending entry may be closed as. */
export const DLQ_CLOSING_STATUSES = ['manually_resolved', 'permanently_failed', 'cancelled'] as const;

export interface DlqEntry {
  dlq_entry_uuid: string;
  task_uuid: string;
  namespace: string;
  task_name: string;
  /** The task's state when it was dead-lettered. */
  original_state: string;
  dlq_reason: string;
  /** ISO 8601. */
  dlq_timestamp: string;
  resolution_status: string;
  /** ISO 8601, when the entry was closed. */
  resolution_timestamp: string | null;
  resolution_notes: string | null;
  resolved_by: string | null;
  /** The task row and its steps (state, attempts, last_error, ...) when it was dead-lettered. */
  task_snapshot: unknown;
  /**
   * staleness_timeout: threshold_minutes, minutes_in_state, minutes_without_progress, exceeded, detected_by;
   * max_retries_exceeded: exhausted_steps [{step, attempts, max_attempts, error_type}], detected_by.
   */
  metadata: Record<string, unknown>;
}

export interface DlqListFilter {
  resolutionStatus?: string;
  reason?: string;
  namespace?: string;
  /** 1..1000. */
  limit: number;
  offset: number;
}

export interface DlqStats {
  total: number;
  /** Every known reason, 0 when none. */
  by_reason: Record<string, number>;
  /** Every resolution status, 0 when none. */
  by_status: Record<string, number>;
  /** ISO 8601 dlq_timestamp of the oldest pending entry. */
  oldest_pending_at: string | null;
  /** Mean minutes from dlq_timestamp to resolution_timestamp over closed entries (2 decimals). */
  avg_resolution_minutes: number | null;
}

export interface DlqUpdate {
  resolution_status: string;
  resolution_notes?: string;
  resolved_by?: string;
}

interface DlqRow {
  dlq_entry_uuid: string;
  task_uuid: string;
  namespace: string;
  task_name: string;
  original_state: string;
  dlq_reason: string;
  dlq_timestamp: Date | string;
  resolution_status: string;
  resolution_timestamp: Date | string | null;
  resolution_notes: string | null;
  resolved_by: string | null;
  task_snapshot: unknown;
  metadata: Record<string, unknown> | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_LIMIT = 1_000;

const ENTRY_COLUMNS = `d.dlq_entry_uuid, d.task_uuid, t.namespace_name::text AS namespace, nt.name::text AS task_name,
  d.original_state, d.dlq_reason, d.dlq_timestamp, d.resolution_status, d.resolution_timestamp,
  d.resolution_notes, d.resolved_by, d.task_snapshot, d.metadata`;
const ENTRY_JOINS = `JOIN tasker.tasks t ON t.task_uuid = d.task_uuid
  JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid`;

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

function toEntry(row: DlqRow): DlqEntry {
  return {
    dlq_entry_uuid: row.dlq_entry_uuid,
    task_uuid: row.task_uuid,
    namespace: row.namespace,
    task_name: row.task_name,
    original_state: row.original_state,
    dlq_reason: row.dlq_reason,
    dlq_timestamp: iso(row.dlq_timestamp),
    resolution_status: row.resolution_status,
    resolution_timestamp: row.resolution_timestamp === null ? null : iso(row.resolution_timestamp),
    resolution_notes: row.resolution_notes,
    resolved_by: row.resolved_by,
    task_snapshot: row.task_snapshot,
    metadata: row.metadata ?? {},
  };
}

function oneOf(value: string, allowed: readonly string[], what: string): void {
  if (!allowed.includes(value)) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `unknown DLQ ${what} "${value}"; use one of ${allowed.join(', ')}`,
      { details: { [what.replace(' ', '_')]: value, allowed } },
    );
  }
}

/**
 * DLQ entries, newest first, with the total matching the filter (for pagination).
 * @throws ValidationError TASKER_INVALID_ARGUMENT for an unknown status or reason, or a limit/offset out of range
 */
export async function listDlqEntries(
  db: Queryable,
  filter: DlqListFilter,
): Promise<{ entries: DlqEntry[]; total: number }> {
  if (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > MAX_LIMIT) {
    throw new ValidationError('TASKER_INVALID_ARGUMENT', `limit must be an integer 1..${MAX_LIMIT}`, {
      details: { limit: filter.limit },
    });
  }
  if (!Number.isInteger(filter.offset) || filter.offset < 0) {
    throw new ValidationError('TASKER_INVALID_ARGUMENT', 'offset must be an integer of 0 or more', {
      details: { offset: filter.offset },
    });
  }
  const conditions: string[] = [];
  const params: SqlParam[] = [];
  if (filter.resolutionStatus !== undefined) {
    oneOf(filter.resolutionStatus, DLQ_RESOLUTION_STATUSES, 'resolution status');
    params.push(filter.resolutionStatus);
    conditions.push(`d.resolution_status = $${params.length}`);
  }
  if (filter.reason !== undefined) {
    oneOf(filter.reason, DLQ_REASONS, 'reason');
    params.push(filter.reason);
    conditions.push(`d.dlq_reason = $${params.length}`);
  }
  if (filter.namespace !== undefined) {
    params.push(filter.namespace);
    conditions.push(`t.namespace_name = $${params.length}`);
  }
  const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
  const { rows: counted } = await db.query<{ total: number }>(
    `SELECT count(*)::int AS total FROM tasker.tasks_dlq d ${ENTRY_JOINS} ${where}`,
    params,
  );
  const { rows } = await db.query<DlqRow>(
    `SELECT ${ENTRY_COLUMNS} FROM tasker.tasks_dlq d ${ENTRY_JOINS} ${where}
     ORDER BY d.dlq_timestamp DESC, d.dlq_entry_uuid DESC
     LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, filter.limit, filter.offset],
  );
  return { entries: rows.map(toEntry), total: counted[0]?.total ?? 0 };
}

/** One entry; undefined when there is none with that uuid (a malformed uuid included). */
export async function getDlqEntry(db: Queryable, dlqEntryUuid: string): Promise<DlqEntry | undefined> {
  if (!UUID.test(dlqEntryUuid)) return undefined;
  const { rows } = await db.query<DlqRow>(
    `SELECT ${ENTRY_COLUMNS} FROM tasker.tasks_dlq d ${ENTRY_JOINS} WHERE d.dlq_entry_uuid = $1`,
    [dlqEntryUuid],
  );
  const row = rows[0];
  return row === undefined ? undefined : toEntry(row);
}

/** Every entry of a task, newest first (at most one of them pending). */
export async function getDlqEntriesForTask(db: Queryable, taskUuid: string): Promise<DlqEntry[]> {
  if (!UUID.test(taskUuid)) return [];
  const { rows } = await db.query<DlqRow>(
    `SELECT ${ENTRY_COLUMNS} FROM tasker.tasks_dlq d ${ENTRY_JOINS} WHERE d.task_uuid = $1
     ORDER BY d.dlq_timestamp DESC, d.dlq_entry_uuid DESC`,
    [taskUuid],
  );
  return rows.map(toEntry);
}

/** Counts by reason and status, the oldest pending entry, and how long resolution takes on average. */
export async function dlqStats(db: Queryable): Promise<DlqStats> {
  const { rows } = await db.query<{
    total: number;
    by_reason: Record<string, number>;
    by_status: Record<string, number>;
    oldest_pending_at: Date | string | null;
    avg_resolution_minutes: number | null;
  }>(
    `SELECT
       (SELECT count(*)::int FROM tasker.tasks_dlq) AS total,
       (SELECT coalesce(jsonb_object_agg(r.dlq_reason, r.n), '{}'::jsonb)
          FROM (SELECT dlq_reason, count(*)::int AS n FROM tasker.tasks_dlq GROUP BY dlq_reason) r) AS by_reason,
       (SELECT coalesce(jsonb_object_agg(s.resolution_status, s.n), '{}'::jsonb)
          FROM (SELECT resolution_status, count(*)::int AS n FROM tasker.tasks_dlq GROUP BY resolution_status) s) AS by_status,
       (SELECT min(dlq_timestamp) FROM tasker.tasks_dlq WHERE resolution_status = 'pending') AS oldest_pending_at,
       (SELECT round((avg(extract(epoch FROM resolution_timestamp - dlq_timestamp)) / 60)::numeric, 2)::float8
          FROM tasker.tasks_dlq WHERE resolution_timestamp IS NOT NULL) AS avg_resolution_minutes`,
  );
  const row = rows[0];
  const zeros = (keys: readonly string[]): Record<string, number> =>
    Object.fromEntries(keys.map((key) => [key, 0]));
  return {
    total: row?.total ?? 0,
    by_reason: { ...zeros(DLQ_REASONS), ...row?.by_reason },
    by_status: { ...zeros(DLQ_RESOLUTION_STATUSES), ...row?.by_status },
    oldest_pending_at:
      row?.oldest_pending_at === null || row?.oldest_pending_at === undefined
        ? null
        : iso(row.oldest_pending_at),
    avg_resolution_minutes: row?.avg_resolution_minutes ?? null,
  };
}

/**
 * Closes a pending entry as manually_resolved, permanently_failed or cancelled, stamping resolution_timestamp.
 * An entry is closed once: of two concurrent updates one wins and the other gets the conflict.
 * @throws NotFoundError TASKER_DLQ_ENTRY_NOT_FOUND; ConflictError TASKER_DLQ_ENTRY_RESOLVED (the entry is no
 *   longer pending; details: current_status); ValidationError TASKER_INVALID_ARGUMENT (another target status)
 */
export async function updateDlqEntry(
  db: Queryable,
  dlqEntryUuid: string,
  update: DlqUpdate,
): Promise<DlqEntry> {
  oneOf(update.resolution_status, DLQ_CLOSING_STATUSES, 'resolution status');
  const notFound = (): NotFoundError =>
    new NotFoundError('TASKER_DLQ_ENTRY_NOT_FOUND', `no DLQ entry ${dlqEntryUuid} exists`, {
      details: { dlq_entry_uuid: dlqEntryUuid },
    });
  if (!UUID.test(dlqEntryUuid)) throw notFound();
  const { rows } = await db.query<DlqRow>(
    `WITH closed AS (
       UPDATE tasker.tasks_dlq
       SET resolution_status = $2, resolution_notes = coalesce($3, resolution_notes), resolved_by = $4,
           resolution_timestamp = now(), updated_at = now()
       WHERE dlq_entry_uuid = $1 AND resolution_status = 'pending'
       RETURNING *
     )
     SELECT ${ENTRY_COLUMNS} FROM closed d ${ENTRY_JOINS}`,
    [dlqEntryUuid, update.resolution_status, update.resolution_notes ?? null, update.resolved_by ?? null],
  );
  const row = rows[0];
  if (row !== undefined) return toEntry(row);
  const current = await getDlqEntry(db, dlqEntryUuid);
  if (current === undefined) throw notFound();
  throw new ConflictError(
    'TASKER_DLQ_ENTRY_RESOLVED',
    `DLQ entry ${dlqEntryUuid} is already ${current.resolution_status}` +
      (current.resolved_by === null ? '' : ` (by ${current.resolved_by})`) +
      '; only a pending entry can be updated',
    {
      details: {
        dlq_entry_uuid: dlqEntryUuid,
        current_status: current.resolution_status,
        resolution_timestamp: current.resolution_timestamp,
        resolved_by: current.resolved_by,
      },
    },
  );
}
