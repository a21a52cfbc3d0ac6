import { TERMINAL_TASK_STATES } from '../domain/state/taskStates.ts';
import { TaskerClient } from '../client/taskerClient.ts';
import type { StepView, TaskRequest, TaskView } from '../client/taskerClient.ts';

const TERMINAL = new Set<string>(TERMINAL_TASK_STATES);
const POLL_MS = 25;

const SYMBOLS: Record<string, string> = {
  complete: '✓',
  resolved_manually: '✓',
  error: '✗',
  cancelled: '⊘',
  in_progress: '▶',
  waiting_for_retry: '↻',
};

export function formatStepLine(step: StepView): string {
  const symbol = SYMBOLS[step.status] ?? '·';
  const detail =
    step.status === 'complete' && step.result !== undefined && step.result !== null
      ? ` → ${JSON.stringify(step.result)}`
      : step.status === 'error' || step.status === 'waiting_for_retry'
        ? ` (attempt ${step.attempts}/${step.max_attempts}${step.error === undefined || step.error === null ? '' : `: ${JSON.stringify(step.error)}`})`
        : '';
  return `  ${symbol} ${step.name.padEnd(22)} ${step.status}${detail}`;
}

/** A task request built from command-line JSON: the server checks that the context is an object. */
type CommandLineTaskRequest = Omit<TaskRequest, 'context'> & { context?: unknown };

/**
 * Watches a task until it is terminal, calling `onStep` once per step state change. Polls the task view (a
 * REST client has no push channel); either creates the task first (`request` given) or watches `taskUuid`.
 */
export async function watchTask(
  api: string | TaskerClient,
  target: CommandLineTaskRequest | { taskUuid: string },
  onStep: (step: StepView) => void,
  options: { timeoutMs?: number } = {},
): Promise<TaskView & { elapsedMs: number }> {
  const client = typeof api === 'string' ? new TaskerClient(api) : api;
  try {
    const started = performance.now();
    let task: TaskView =
      'taskUuid' in target
        ? await client.getTask(target.taskUuid)
        : await client.createTask(target as TaskRequest);
    const seen = new Map<string, string>();
    const deadline = started + (options.timeoutMs ?? 10 * 60_000);
    for (;;) {
      for (const step of task.steps ?? []) {
        if (seen.get(step.step_uuid) !== step.status) {
          seen.set(step.step_uuid, step.status);
          if (step.status !== 'pending') onStep(step);
        }
      }
      if (TERMINAL.has(task.status) || performance.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      task = await client.getTask(task.task_uuid);
    }
    return { ...task, elapsedMs: Math.round(performance.now() - started) };
  } finally {
    // A client made here is this function's to close; one passed in stays open for its owner.
    if (typeof api === 'string') client.close();
  }
}
