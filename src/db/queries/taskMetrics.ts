/**
 * Scrape-time reads behind the SQL-derived metrics (observability/metrics.ts). Each is run at most once per
 * Prometheus scrape (every 15-60 s), never on the hot path.
 */
import type { Queryable } from '../database.ts';

import { TERMINAL_TASK_STATES as TERMINAL_STATES } from '../../domain/state/taskStates.ts';
import type { TerminalTaskState } from '../../domain/state/taskStates.ts';

/**
 * Tasks not in a terminal state. The WHERE clause is the predicate of the partial index tasks_active_idx, so
 * this is an index-only count over the live tasks, however many finished tasks the table holds.
 */
export async function countActiveTasks(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ count: string }>(
    `SELECT count(*) AS count FROM tasker.tasks
      WHERE current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')`,
    [],
    { name: 'tasker_metrics_active_tasks' },
  );
  return Number(rows[0]?.count ?? 0);
}

export interface QueueMetricsRow {
  queue: string;
  depth: number;
  oldestAgeSeconds: number | null;
}

/** Every PGMQ queue's length and oldest message age (pgmq.metrics_all: one count(*) per queue table). */
export async function queueMetricsAll(db: Queryable): Promise<QueueMetricsRow[]> {
  const { rows } = await db.query<{
    queue_name: string;
    queue_length: string | number;
    oldest_msg_age_sec: number | null;
  }>('SELECT queue_name, queue_length, oldest_msg_age_sec FROM pgmq.metrics_all()');
  return rows.map((row) => ({
    queue: row.queue_name,
    depth: Number(row.queue_length),
    oldestAgeSeconds: row.oldest_msg_age_sec,
  }));
}

/** The smallest UUIDv7 of a millisecond: transitions with ids from it on were created at or after it. */
function uuidV7Floor(unixMs: number): string {
  const hex = Math.max(0, Math.floor(unixMs)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

export interface TaskCompletionsRow {
  namespace: string;
  template: string;
  state: TerminalTaskState;
  count: number;
  /** Seconds from each task's creation to its terminal transition. */
  durations: number[];
}

/**
 * The SQL of a window over a transition table by UUIDv7 id: from `$1` (exclusive of nothing before) to `$2`
 * milliseconds before now. `upper` is the next window's start.
 */
const WINDOW_SQL = `WITH bound AS (
         SELECT lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - $2::bigint), 12, '0') AS h
       ), window_ AS (
         SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-0000-0000-000000000000')::uuid AS upper FROM bound
       )`;

/** A moving window over UUIDv7 transition ids: each read covers what was written since the previous one. */
class TransitionWindow {
  #from: string;

  constructor(sinceMs: number) {
    this.#from = uuidV7Floor(sinceMs);
  }

  get from(): string {
    return this.#from;
  }

  /** The clock may step back: never move the window's start backwards (nothing is counted twice anyway). */
  advance(upper: string | undefined): void {
    if (upper !== undefined && upper > this.#from) this.#from = upper;
  }
}

/** A reader of what was written since its previous read, `settleMs` behind the clock (see below). */
abstract class WindowedReader {
  protected readonly window: TransitionWindow;
  protected readonly settleMs: number;

  /** Reads from `sinceMs` (Unix ms; usually process start) on. */
  constructor(
    protected readonly db: Queryable,
    options: { sinceMs: number; settleMs: number },
  ) {
    this.window = new TransitionWindow(options.sinceMs);
    this.settleMs = options.settleMs;
  }
}

/**
 * Counts tasks that finished since the previous call, by reading terminal task transitions in a window of
 * their ids (UUIDv7: creation time first), so the read is a range scan of task_transitions' primary key
 * however long the table is.
 *
 * The window ends `settleMs` before now: a transition's id is taken when it is inserted, but it becomes
 * visible only when its transaction commits. Finalizing transactions last milliseconds; a transaction still
 * open `settleMs` after its transition was written would be missed (the counter undercounts it, nothing
 * else is affected).
 */
export class TaskCompletionReader extends WindowedReader {
  async read(): Promise<TaskCompletionsRow[]> {
    const { rows } = await this.db.query<{
      upper: string;
      namespace: string | null;
      template: string | null;
      state: TerminalTaskState | null;
      count: string;
      durations: number[] | null;
    }>(
      `${WINDOW_SQL}
       SELECT w.upper::text AS upper, t.namespace_name AS namespace, nt.name AS template, tt.to_state AS state,
              count(tt.task_transition_uuid) AS count,
              array_agg(extract(epoch FROM tt.created_at - t.created_at)::float8)
                FILTER (WHERE tt.task_transition_uuid IS NOT NULL) AS durations
         FROM window_ w
         LEFT JOIN tasker.task_transitions tt
           ON tt.task_transition_uuid >= $1::uuid AND tt.task_transition_uuid < w.upper
          AND tt.to_state = ANY ($3::text[])
         LEFT JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
         LEFT JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
        GROUP BY w.upper, t.namespace_name, nt.name, tt.to_state`,
      [this.window.from, this.settleMs, TERMINAL_STATES],
      { name: 'tasker_metrics_task_completions_v2' },
    );
    this.window.advance(rows[0]?.upper);
    return rows.flatMap((row) =>
      row.state === null || row.namespace === null || row.template === null
        ? []
        : [
            {
              namespace: row.namespace,
              template: row.template,
              state: row.state,
              count: Number(row.count),
              durations: row.durations ?? [],
            },
          ],
    );
  }
}

export interface StepLatencyRow {
  namespace: string;
  /** Seconds from the step's enqueued transition to its in_progress one (the claim). */
  enqueueToStart: number | null;
  /** First runs of steps with parents: seconds from the last parent's completion to this start. */
  edge: number | null;
}

/**
 * The latencies of steps started since the previous call, read like TaskCompletionReader from a window of
 * in_progress transition ids: enqueue → start of every run, and parent complete → child start of every first
 * run of a step with dependencies (the step-edge latency).
 */
export class StepLatencyReader extends WindowedReader {
  async read(): Promise<StepLatencyRow[]> {
    const { rows } = await this.db.query<{
      upper: string;
      namespace: string | null;
      enqueue_to_start: number | null;
      edge: number | null;
    }>(
      `${WINDOW_SQL}
       SELECT w.upper::text AS upper, t.namespace_name AS namespace,
              extract(epoch FROM tr.created_at - enq.created_at)::float8 AS enqueue_to_start,
              CASE WHEN tr.metadata ->> 'attempt' = '1' THEN
                (SELECT extract(epoch FROM tr.created_at - max(pc.created_at))::float8
                   FROM tasker.workflow_step_edges e
                   JOIN tasker.workflow_step_transitions pc
                     ON pc.workflow_step_uuid = e.from_step_uuid AND pc.to_state IN ('complete', 'resolved_manually')
                  WHERE e.to_step_uuid = tr.workflow_step_uuid)
              END AS edge
         FROM window_ w
         LEFT JOIN tasker.workflow_step_transitions tr
           ON tr.workflow_step_transition_uuid >= $1::uuid AND tr.workflow_step_transition_uuid < w.upper
          AND tr.to_state = 'in_progress'
         LEFT JOIN tasker.workflow_step_transitions enq
           ON enq.workflow_step_uuid = tr.workflow_step_uuid AND enq.sort_key = tr.sort_key - 1 AND enq.to_state = 'enqueued'
         LEFT JOIN tasker.workflow_steps s ON s.workflow_step_uuid = tr.workflow_step_uuid
         LEFT JOIN tasker.tasks t ON t.task_uuid = s.task_uuid`,
      [this.window.from, this.settleMs],
      { name: 'tasker_metrics_step_latencies' },
    );
    this.window.advance(rows[0]?.upper);
    return rows.flatMap((row) =>
      row.namespace === null
        ? []
        : [{ namespace: row.namespace, enqueueToStart: row.enqueue_to_start, edge: row.edge }],
    );
  }
}
