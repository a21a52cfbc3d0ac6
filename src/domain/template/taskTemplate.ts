/**
 * A task template after parsing and validation: what the engine works from. The YAML form (reference §7,
 * snake_case keys) is parsed into this by `parseTaskTemplate` (templateParser.ts).
 */

export const IDENTITY_STRATEGIES = ['strict', 'caller_provided', 'always_unique'] as const;
export type IdentityStrategy = (typeof IDENTITY_STRATEGIES)[number];

export const BACKOFF_STRATEGIES = ['exponential', 'linear', 'fixed'] as const;
export type BackoffStrategy = (typeof BACKOFF_STRATEGIES)[number];

export interface RetryPolicy {
  /** @defaultValue true */
  retryable: boolean;
  /** Counts every run, the first included. 1..100. @defaultValue 3 */
  maxAttempts: number;
  /** @defaultValue 'exponential' */
  backoff: BackoffStrategy;
  /** @defaultValue 1000 */
  backoffBaseMs: number;
  /** @defaultValue 30000 */
  maxBackoffMs: number;
}

export interface StepTemplate {
  name: string;
  description: string | null;
  handler: {
    /** The name a worker's handler is registered under. */
    callable: string;
    /** Static configuration handed to the handler as `ctx.config`. */
    initialization: Record<string, unknown>;
  };
  /** Names of steps that must complete before this one. */
  dependencies: string[];
  retry: RetryPolicy;
  /** Per-step timeout; null means the worker's default (worker.handler_timeout_ms). 1..86400. */
  timeoutSeconds: number | null;
}

export interface LifecyclePolicy {
  maxDurationMinutes: number | null;
  maxWaitingForDependenciesMinutes: number | null;
  maxWaitingForRetryMinutes: number | null;
  maxStepsInProcessMinutes: number | null;
}

export interface TaskTemplate {
  /** 1-64 chars: lowercase letters, digits, underscores. */
  name: string;
  /** Queue `worker_<namespace>_queue` must fit 47 chars, so 1-34 chars: lowercase letters, digits, underscores. */
  namespace: string;
  /** Semantic version, e.g. 1.0.0. */
  version: string;
  description: string | null;
  /** A JSON Schema (draft 2020-12 or 7) the task context must satisfy; null accepts any object. */
  inputSchema: Record<string, unknown> | null;
  identityStrategy: IdentityStrategy;
  /** In declaration order. */
  steps: StepTemplate[];
  lifecycle: LifecyclePolicy;
  metadata: Record<string, unknown>;
}
