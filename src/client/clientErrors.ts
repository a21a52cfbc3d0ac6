import { TaskerError } from '../domain/errors.ts';
import type { TaskerErrorCode } from '../domain/errors.ts';

/** Where a failed call went and how often it was tried. */
interface CallFacts {
  method: string;
  path: string;
  /** Attempts made, the failed one included. */
  attempts: number;
}

/**
 * An error answer from a Tasker server. `code` and `message` are the server's (`{error: {code, message,
 * details}}`); an answer without a Tasker error body (a proxy in between) is `TASKER_API_ERROR` with the HTTP
 * status in the message.
 * @public
 */
export class ServerAnswerError extends TaskerError {
  /** The HTTP status. */
  readonly status: number;
  /** `Retry-After` of the answer in seconds (an HTTP date is converted), when it had one. */
  readonly retryAfterSeconds: number | undefined;
  /** `X-Request-Id` of the answer: the server log has the request under it. */
  readonly requestId: string | undefined;
  readonly method: string;
  readonly path: string;
  /** Attempts made for this call, the answered one included (more than 1 after 503/429 retries). */
  readonly attempts: number;

  constructor(
    status: number,
    code: string,
    message: string,
    options: {
      details?: Record<string, unknown>;
      retryAfterSeconds?: number | undefined;
      requestId?: string | undefined;
      call?: CallFacts;
    } = {},
  ) {
    // Server codes come from the same code list; an unknown one (a newer server) is kept as it is.
    super(code as TaskerErrorCode, message, {
      details: {
        ...options.details,
        http_status: status,
        ...(options.retryAfterSeconds !== undefined && { retry_after_seconds: options.retryAfterSeconds }),
      },
    });
    this.status = status;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.requestId = options.requestId;
    this.method = options.call?.method ?? '';
    this.path = options.call?.path ?? '';
    this.attempts = options.call?.attempts ?? 1;
  }
}

/**
 * 409 `TASKER_DUPLICATE_TASK` to `createTask`: a task with the same identity exists. The server does not say
 * which (identity must not be probeable), so when an earlier attempt of the same call ended without a clear
 * answer (503, connection reset, timeout) the existing task may be the one that attempt created:
 * `mayBeOwnEarlierAttempt` says so. Send an `idempotency_key` you keep, and treat a 409 for it as "created".
 * @public
 */
export class DuplicateTaskError extends ServerAnswerError {
  readonly mayBeOwnEarlierAttempt: boolean;

  constructor(answer: ServerAnswerError, mayBeOwnEarlierAttempt: boolean) {
    super(answer.status, answer.code, answer.message, {
      details: { ...answer.details, may_be_own_earlier_attempt: mayBeOwnEarlierAttempt },
      retryAfterSeconds: answer.retryAfterSeconds,
      requestId: answer.requestId,
      call: answer,
    });
    this.mayBeOwnEarlierAttempt = mayBeOwnEarlierAttempt;
  }
}

/**
 * No answer: the connection was refused or broke before an answer came (`TASKER_SERVER_UNREACHABLE`), or the
 * per-request timeout passed (`TASKER_CLIENT_TIMEOUT`; the server may still have done the work).
 * @public
 */
export class ServerUnreachableError extends TaskerError {
  readonly url: string;
  /** The socket error code (ECONNREFUSED, ECONNRESET, ...) or `timeout`. */
  readonly reason: string;
  readonly method: string;
  readonly path: string;
  readonly attempts: number;

  constructor(
    code: 'TASKER_SERVER_UNREACHABLE' | 'TASKER_CLIENT_TIMEOUT',
    message: string,
    options: { url: string; reason: string; call: CallFacts; cause?: unknown },
  ) {
    super(code, message, {
      details: { url: options.url, reason: options.reason, attempts: options.call.attempts },
      cause: options.cause,
    });
    this.url = options.url;
    this.reason = options.reason;
    this.method = options.call.method;
    this.path = options.call.path;
    this.attempts = options.call.attempts;
  }
}
