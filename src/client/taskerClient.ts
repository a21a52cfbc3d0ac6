import { TaskerError } from '../domain/errors.ts';
import type { TaskerErrorCode } from '../domain/errors.ts';

// The client is public API for programs that talk to a Tasker server: its exports carry `@public`, so the
// dead-export check (`npm run knip`) never reports them, even where the CLI does not use them.

/**
 * An error answer from a Tasker server: its HTTP status and its `{error: {code, message, details}}`.
 * @public
 */
export class ServerAnswerError extends TaskerError {
  readonly status: number;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    // Server codes come from the same code list; an unknown one (a newer server) is kept as it is.
    super(code as TaskerErrorCode, message, { details: { ...details, http_status: status } });
    this.status = status;
  }
}

/** @public */
export interface StepView {
  step_uuid: string;
  name: string;
  status: string;
  attempts: number;
  max_attempts: number;
  result?: unknown;
  error?: unknown;
  [key: string]: unknown;
}

/** @public */
export interface TaskView {
  task_uuid: string;
  namespace: string;
  name: string;
  version: string;
  status: string;
  completion_percentage?: number;
  steps?: StepView[];
  [key: string]: unknown;
}

/** @public */
export type JsonBody = Record<string, unknown>;

/**
 * A small client of the orchestration REST API v1, used by the CLI and usable from programs. Errors come back
 * as ServerAnswerError with the server's code; an unreachable server is TASKER_SERVER_UNREACHABLE naming the URL.
 * @public
 */
export class TaskerClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(baseUrl: string, options: { timeoutMs?: number } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /**
   * One API call. A read answered 503 (server shedding load, database briefly unavailable) is retried up to
   * three times, waiting what Retry-After asks (at most 2 s); writes are never retried here.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.requestOnce<T>(method, path, body);
      } catch (error) {
        if (!(error instanceof ServerAnswerError) || error.status !== 503 || method !== 'GET' || attempt > 3)
          throw error;
        const retryAfter = Number(error.details.retry_after_seconds ?? 1);
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(2_000, Math.max(100, retryAfter * 1000))),
        );
      }
    }
  }

  private async requestOnce<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new TaskerError(
        'TASKER_SERVER_UNREACHABLE',
        `cannot reach the Tasker server at ${this.baseUrl} (${cause}); start it (npx tasker orchestration, or npx tasker dev) or pass --url / set TASKER_URL`,
        { cause: error },
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (
        parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } }
      )?.error;
      const retryAfter = response.headers.get('retry-after');
      throw new ServerAnswerError(
        response.status,
        error?.code ?? 'TASKER_API_ERROR',
        error?.message ?? `${method} ${path} answered HTTP ${response.status}`,
        {
          ...(error?.details ?? {}),
          ...(retryAfter !== null && { retry_after_seconds: Number(retryAfter) }),
        },
      );
    }
    return parsed as T;
  }

  createTask(request: JsonBody): Promise<TaskView> {
    return this.request('POST', '/v1/tasks', request);
  }

  getTask(taskUuid: string): Promise<TaskView> {
    return this.request('GET', `/v1/tasks/${encodeURIComponent(taskUuid)}`);
  }

  listTasks(query: Record<string, string | number | undefined> = {}): Promise<{
    tasks: TaskView[];
    pagination: Record<string, number | boolean>;
  }> {
    return this.request('GET', `/v1/tasks${queryString(query)}`);
  }

  cancelTask(taskUuid: string): Promise<TaskView> {
    return this.request('DELETE', `/v1/tasks/${encodeURIComponent(taskUuid)}`);
  }

  listSteps(taskUuid: string): Promise<StepView[] | { steps: StepView[] }> {
    return this.request('GET', `/v1/tasks/${encodeURIComponent(taskUuid)}/workflow_steps`);
  }

  stepAction(taskUuid: string, stepUuid: string, body: JsonBody): Promise<StepView> {
    return this.request(
      'PATCH',
      `/v1/tasks/${encodeURIComponent(taskUuid)}/workflow_steps/${encodeURIComponent(stepUuid)}`,
      body,
    );
  }
}

function queryString(query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}
