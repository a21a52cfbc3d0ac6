import type { StepView, TaskView, TaskWarning } from '../client/taskerClient.ts';
import { formatStepLine } from './taskProgress.ts';

export const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

/** Plain aligned columns; the widest cell of each column sets its width. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A server warning about a task (e.g. no live worker for its namespace), one line. */
export function formatWarning(warning: TaskWarning): string {
  return `  ⚠ ${warning.message} [${warning.code}]`;
}

export function printTask(task: TaskView): void {
  out(`task ${task.task_uuid}`);
  out(`  ${task.namespace}/${task.name} v${task.version}`);
  out(
    `  status: ${task.status}` +
      (typeof task.completion_percentage === 'number'
        ? `  (${task.completion_percentage}% of steps done)`
        : ''),
  );
  for (const key of ['created_at', 'completed_at', 'execution_status', 'recommended_action'] as const) {
    const value = task[key];
    if (value !== undefined && value !== null)
      out(`  ${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  for (const warning of task.warnings ?? []) out(formatWarning(warning));
  const steps: StepView[] = task.steps ?? [];
  if (steps.length > 0) {
    out('  steps:');
    for (const step of steps) out(`  ${formatStepLine(step)}`);
  }
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}
