/** The API's JSON as the tests read it. */
export interface StepView {
  step_uuid: string;
  task_uuid: string;
  name: string;
  status: string;
  handler: string;
  dependencies: string[];
  attempts: number;
  max_attempts: number;
  retryable: boolean;
  ready: boolean;
  next_retry_at: string | null;
  created_at: string;
  updated_at: string;
  last_attempted_at: string | null;
  completed_at: string | null;
  result: unknown;
  error: {
    message?: string;
    error_type?: string;
    retryable?: boolean;
    code?: string;
    attempt?: number;
  } | null;
}

export interface TaskView {
  task_uuid: string;
  namespace: string;
  name: string;
  version: string;
  status: string;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  context: Record<string, unknown>;
  initiator: string | null;
  source_system: string | null;
  reason: string | null;
  priority: number;
  tags: string[];
  correlation_id: string;
  parent_correlation_id: string | null;
  total_steps: number;
  pending_steps: number;
  in_progress_steps: number;
  completed_steps: number;
  failed_steps: number;
  ready_steps: number;
  execution_status: string;
  recommended_action: string;
  completion_percentage: number;
  health_status: string;
  duration_ms: number | null;
  steps: StepView[];
}

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface TaskList {
  tasks: (Omit<TaskView, 'steps' | 'context'> & { total_steps: number })[];
  pagination: {
    page: number;
    per_page: number;
    total_count: number;
    total_pages: number;
    has_next: boolean;
    has_previous: boolean;
  };
}

/** Step results by step name. */
export function resultsByName(view: TaskView): Record<string, unknown> {
  return Object.fromEntries(view.steps.map((step) => [step.name, step.result]));
}

export function stepNamed(view: TaskView, name: string): StepView {
  const step = view.steps.find((s) => s.name === name);
  if (step === undefined) throw new Error(`task ${view.task_uuid} has no step ${name}`);
  return step;
}
