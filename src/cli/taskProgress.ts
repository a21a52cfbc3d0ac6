import { TERMINAL_TASK_STATES } from '../domain/state/taskStates.ts';
import { TaskerClient } from '../client/taskerClient.ts';
import type { StepView, TaskRequest, TaskView, TaskWarning } from '../client/taskerClient.ts';

const TERMINAL = new Set<string>(TERMINAL_TASK_STATES);
/** Seconds each read of a watched task waits for it to finish: how often progress is shown at most. */
const LONG_POLL_SECONDS = 1;

const SYMBOLS: Record<string, string> = {
  complete: '✓',
  resolved_manually: '✓',
  error: '✗',
  cancelled: '⊘',
  in_progress: '▶',
  waiting_for_retry: '↻',
};

/** `TypeError: message` of a stored step error; its backtrace is for `task get`, too long for one line. */
function errorSummary(error: unknown): string {
  if (typeof error !== 'object' || error === null) return JSON.stringify(error);
  const { error_type: type, message } = error as { error_type?: unknown; message?: unknown };
  if (typeof message !== 'string') return JSON.stringify(error);
  return typeof type === 'string' ? `${type}: ${message}` : message;
}

export function formatStepLine(step: StepView): string {
  const symbol = SYMBOLS[step.status] ?? '·';
  const detail =
    step.status === 'complete' && step.result !== undefined && step.result !== null
      ? ` → ${JSON.stringify(step.result)}`
      : step.status === 'error' || step.status === 'waiting_for_retry'
        ? ` (attempt ${step.attempts}/${step.max_attempts}${step.error === undefined || step.error === null ? '' : `: ${errorSummary(step.error)}`})`
        : '';
  return `  ${symbol} ${step.name.padEnd(22)} ${step.status}${detail}`;
}

/** A task request built from command-line JSON: the server checks that the context is an object. */
type CommandLineTaskRequest = Omit<TaskRequest, 'context'> & { context?: unknown };

/**
 * Watches a task until it is terminal, calling `onStep` once per step state change and `onWarning` once per
 * warning the server attaches (e.g. no live worker for the task's namespace). Either creates the task first
 * (`request` given) or watches `taskUuid`. Each read is the server's long poll (`?wait=`): it answers at once
 * when the task finishes, else after LONG_POLL_SECONDS with the task as it is then, so progress shows once a
 * second at most and a finished task is seen without delay, at about one request a second instead of dozens.
 */
export async function watchTask(
  api: string | TaskerClient,
  target: CommandLineTaskRequest | { taskUuid: string },
  onStep: (step: StepView) => void,
  options: { timeoutMs?: number; onWarning?: (warning: TaskWarning) => void } = {},
): Promise<TaskView & { elapsedMs: number }> {
  const client = typeof api === 'string' ? new TaskerClient(api) : api;
  try {
    const started = performance.now();
    let task: TaskView =
      'taskUuid' in target
        ? await client.getTask(target.taskUuid)
        : await client.createTask(target as TaskRequest);
    const seen = new Map<string, string>();
    const warned = new Set<string>();
    const deadline = started + (options.timeoutMs ?? 10 * 60_000);
    for (;;) {
      for (const step of task.steps ?? []) {
        if (seen.get(step.step_uuid) !== step.status) {
          seen.set(step.step_uuid, step.status);
          if (step.status !== 'pending') onStep(step);
        }
      }
      for (const warning of task.warnings ?? []) {
        if (!warned.has(warning.message)) {
          warned.add(warning.message);
          options.onWarning?.(warning);
        }
      }
      const left = deadline - performance.now();
      if (TERMINAL.has(task.status) || left <= 0) break;
      task = await client.getTask(task.task_uuid, {
        waitSeconds: Math.max(1, Math.min(LONG_POLL_SECONDS, Math.floor(left / 1000))),
      });
    }
    return { ...task, elapsedMs: Math.round(performance.now() - started) };
  } finally {
    // A client made here is this function's to close; one passed in stays open for its owner.
    if (typeof api === 'string') client.close();
  }
}
