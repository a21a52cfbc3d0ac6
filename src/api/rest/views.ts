/**
 * Database rows to API views: timestamps as ISO-8601 UTC strings, nothing else renamed (the queries already
 * use the API's snake_case names).
 */
import type { StepViewRow } from '../../db/queries/stepViews.ts';
import type { TaskSummaryRow, TaskViewRow } from '../../db/queries/taskViews.ts';

/** ISO-8601 UTC with milliseconds, from a pg Date or a JSON timestamp string. */
export function iso(value: Date | string): string;
export function iso(value: Date | string | null): string | null;
export function iso(value: Date | string | null): string | null {
  if (value === null) return null;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

export function stepView(row: StepViewRow) {
  return {
    ...row,
    next_retry_at: iso(row.next_retry_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    last_attempted_at: iso(row.last_attempted_at),
    completed_at: iso(row.completed_at),
  };
}

export type TaskView = ReturnType<typeof taskView>;

export function taskView(row: TaskViewRow) {
  return {
    ...row,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    completed_at: iso(row.completed_at),
    duration_ms: row.completed_at === null ? null : row.completed_at.getTime() - row.created_at.getTime(),
    steps: row.steps.map(stepView),
  };
}

export function taskSummary(row: TaskSummaryRow) {
  return {
    ...row,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    completed_at: iso(row.completed_at),
  };
}
