/**
 * When the client tries a call again, and how long it waits first. One table, keyed by what went wrong and
 * by whether the request may safely be sent twice:
 *
 * | outcome                                        | GET, POST /v1/tasks | DELETE, PATCH, other POST |
 * | ---------------------------------------------- | ------------------- | ------------------------- |
 * | 429                                            | retry               | retry                     |
 * | 503                                            | retry               | fail                      |
 * | connection refused (nothing was sent)          | retry               | retry                     |
 * | connection reset / closed before an answer     | retry               | fail                      |
 * | per-request timeout, any other status or error | fail                | fail                      |
 *
 * GET changes nothing. POST /v1/tasks is safe because creation is idempotent under the template's identity
 * strategy (docs/api.md, "The TypeScript client"). A 429 means the request was refused unprocessed. A 503 or a
 * broken connection may come after a cancel or a step action took effect (`TASKER_REQUEST_TIMEOUT`), and
 * repeating those would answer a misleading 409, so they fail at once.
 */

/**
 * Retries of one call. Waits honour `Retry-After` (seconds or an HTTP date), capped by `maxDelayMs`; without
 * it they back off exponentially from `baseDelayMs`, each wait drawn between half and all of its step.
 * @public
 */
export interface RetryOptions {
  /** Attempts in all, the first included; 1 turns retries off. @defaultValue 4 */
  maxAttempts?: number;
  /**
   * Time for the whole call, from the first attempt to the start of the last: no wait is begun that would end
   * past it. @defaultValue 20000
   */
  maxElapsedMs?: number;
  /** First backoff without `Retry-After`; doubles per attempt. @defaultValue 200 */
  baseDelayMs?: number;
  /** The longest single wait, a larger `Retry-After` included. @defaultValue 5000 */
  maxDelayMs?: number;
}

export type ResolvedRetryOptions = Required<RetryOptions>;

export const RETRY_DEFAULTS: ResolvedRetryOptions = {
  maxAttempts: 4,
  maxElapsedMs: 20_000,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
};

export function resolveRetryOptions(options: RetryOptions | false | undefined): ResolvedRetryOptions {
  if (options === false) return { ...RETRY_DEFAULTS, maxAttempts: 1 };
  const resolved = { ...RETRY_DEFAULTS, ...options };
  for (const [key, value] of Object.entries(resolved)) {
    if (!Number.isFinite(value) || value < 0 || (key === 'maxAttempts' && value < 1)) {
      throw new RangeError(`retry.${key} must be a finite number >= ${key === 'maxAttempts' ? 1 : 0}`);
    }
  }
  return resolved;
}

/** Whether a request may be sent a second time after an unclear outcome. */
export function isRepeatable(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return true;
  return method === 'POST' && /^\/v1\/tasks(?:\?|$)/.test(path);
}

/** What ended one attempt, as far as retrying goes. */
export type AttemptOutcome =
  | { kind: 'status'; status: number; retryAfterMs: number | undefined }
  | { kind: 'refused' }
  | { kind: 'broken' }
  | { kind: 'final' };

export function shouldRetry(outcome: AttemptOutcome, repeatable: boolean): boolean {
  switch (outcome.kind) {
    case 'status':
      return outcome.status === 429 || (outcome.status === 503 && repeatable);
    case 'refused':
      return true;
    case 'broken':
      return repeatable;
    case 'final':
      return false;
  }
}

/** The wait before attempt `attempt + 1`: `Retry-After` when given, else jittered exponential backoff. */
export function retryDelayMs(
  options: ResolvedRetryOptions,
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(options.maxDelayMs, Math.max(0, retryAfterMs));
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3). Anything
 * else, or nothing, is undefined; a date in the past is 0.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
