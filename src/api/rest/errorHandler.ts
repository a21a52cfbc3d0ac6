/**
 * Every failure becomes `{"error": {"code", "message", "details"?}}` with a stable code. Domain errors map by
 * class; fastify's own errors (bad body, wrong content type, too large, timeout) by their code; anything
 * else is a 500 with a generic message and the request id, logged with its stack. SQL text, SQLSTATEs and
 * stack traces never reach the client.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import { sqlStateOf, isConnectionError } from '../../db/sqlState.ts';
import {
  CircuitError,
  ConflictError,
  DatabaseError,
  NotFoundError,
  TaskerError,
  ValidationError,
} from '../../domain/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { ApiError } from './apiError.ts';
import { validationFailure } from './validation.ts';

/** Seconds a client should wait before retrying when the database is unreachable. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

interface Mapped {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Unexpected: logged at error level with the stack. */
  internal: boolean;
}

function fromTaskerError(error: TaskerError): Mapped | undefined {
  const details = Object.keys(error.details).length > 0 ? { ...error.details } : undefined;
  const base = { code: error.code, message: error.message, internal: false, ...(details && { details }) };
  if (error instanceof ValidationError) return { status: 400, ...base };
  if (error instanceof NotFoundError) return { status: 404, ...base };
  if (error instanceof ConflictError) return { status: 409, ...base };
  // An open circuit breaker: answered at once, and the client learns when the trial calls start.
  if (error instanceof CircuitError) {
    return {
      status: 503,
      ...base,
      headers: { 'retry-after': String(error.retryAfterSeconds) },
    };
  }
  // Every pool connection busy: answered after connection_timeout_ms, never hung; the client retries soon.
  if (error instanceof DatabaseError && error.code === 'TASKER_DATABASE_POOL_EXHAUSTED') {
    return {
      status: 503,
      code: error.code,
      message: 'the service is saturated (every database connection busy); retry after 1 s',
      headers: { 'retry-after': '1' },
      internal: false,
    };
  }
  // A statement ran past [database] statement_timeout_ms: the database is slow right now, not the request wrong.
  if (error instanceof DatabaseError && error.code === 'TASKER_STATEMENT_TIMEOUT') {
    return {
      status: 503,
      code: error.code,
      message: 'a database statement took longer than the service allows and was cancelled; retry after 1 s',
      headers: { 'retry-after': '1' },
      internal: false,
    };
  }
  if (error instanceof DatabaseError && error.code === 'TASKER_DATABASE_UNAVAILABLE') {
    return {
      status: 503,
      code: error.code,
      message: `the database is unavailable right now; retry after ${DATABASE_RETRY_AFTER_SECONDS} s`,
      headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
      internal: false,
    };
  }
  return undefined;
}

function fromFastifyError(error: FastifyError, bodyLimitBytes: number): Mapped | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: 'TASKER_UNSUPPORTED_MEDIA_TYPE',
        message: 'request bodies must be JSON: send Content-Type: application/json',
        internal: false,
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'TASKER_BODY_TOO_LARGE',
        message: `request body is larger than the limit of ${bodyLimitBytes} bytes; send less data (large inputs belong in external storage, referenced from the context)`,
        details: { limit_bytes: bodyLimitBytes },
        internal: false,
      };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        status: 400,
        code: 'TASKER_BAD_REQUEST',
        message: 'request body size does not match its Content-Length header; send the body whole',
        internal: false,
      };
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_INVALID_URL':
      return {
        status: 400,
        code: 'TASKER_BAD_REQUEST',
        message:
          'request URL is not valid (bad percent-encoding?); encode path segments with encodeURIComponent',
        internal: false,
      };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return {
        status: 400,
        code: 'TASKER_BAD_REQUEST',
        message: 'a path parameter is longer than 100 characters; check the URL',
        internal: false,
      };
    case 'FST_ERR_HANDLER_TIMEOUT':
      return {
        status: 503,
        code: 'TASKER_REQUEST_TIMEOUT',
        message: 'the request took too long and was abandoned; retry later',
        headers: { 'retry-after': '1' },
        internal: false,
      };
    default:
      // Body stream errors (client aborted) and other protocol-level refusals fastify marks as 4xx.
      if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
        return {
          status: 400,
          code: 'TASKER_BAD_REQUEST',
          message: 'the request could not be read; check the headers and body',
          internal: false,
        };
      }
      return undefined;
  }
}

/** The response for any error thrown while handling a request. */
function mapError(error: unknown, requestId: string, bodyLimitBytes: number): Mapped {
  if (error instanceof ApiError) {
    return {
      status: error.status,
      code: error.code,
      message: error.message,
      headers: { ...error.headers },
      internal: false,
      ...(Object.keys(error.details).length > 0 && { details: { ...error.details } }),
    };
  }
  const validation = (error as { validation?: unknown }).validation;
  if (Array.isArray(validation)) {
    const failure = validationFailure(
      validation as ErrorObject[],
      (error as { validationContext?: string }).validationContext,
    );
    return mapError(failure, requestId, bodyLimitBytes);
  }
  if (error instanceof TaskerError) {
    const mapped = fromTaskerError(error);
    if (mapped !== undefined) return mapped;
  } else if (error instanceof Error && typeof (error as FastifyError).code === 'string') {
    const code = (error as FastifyError).code;
    if (code.startsWith('FST_')) {
      const mapped = fromFastifyError(error as FastifyError, bodyLimitBytes);
      if (mapped !== undefined) return mapped;
    }
  }
  if (isConnectionError(error) || sqlStateOf(error)?.startsWith('53') === true) {
    return fromTaskerError(
      new DatabaseError('TASKER_DATABASE_UNAVAILABLE', 'database unavailable'),
    ) as Mapped;
  }
  return {
    status: 500,
    code: 'TASKER_INTERNAL',
    message: `an unexpected error occurred while handling this request; it was logged with request id ${requestId}: give that id to the operator`,
    details: { request_id: requestId },
    internal: true,
  };
}

/**
 * The error came from the request's own stream: the client closed the connection before its body arrived.
 * Told by origin, not by code: the stream's error is an ECONNRESET, the same code a dropped database
 * connection has.
 */
function isClientAbort(error: unknown, request: FastifyRequest): boolean {
  if (error instanceof TaskerError || sqlStateOf(error) !== undefined) return false;
  return error === request.raw.errored || request.raw.readableAborted;
}

export function sendError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  logger: Logger,
  bodyLimitBytes: number,
): FastifyReply {
  if (isClientAbort(error, request)) {
    // Routine on the internet and cheap to cause: debug, so a client aborting in a loop cannot flood the log.
    logger.debug(
      {
        request_id: request.id,
        method: request.method,
        url: request.url,
        err: error instanceof Error ? error.message : String(error),
      },
      'client disconnected before its request arrived whole',
    );
    // Nobody reads this answer; it is sent so that fastify finishes the request as usual.
    void reply.header('x-request-id', request.id).header('connection', 'close');
    return reply
      .code(400)
      .type('application/json; charset=utf-8')
      .send({
        error: {
          code: 'TASKER_BAD_REQUEST',
          message: 'the client closed the connection before the request arrived whole',
        },
      } satisfies ErrorBody);
  }
  const mapped = mapError(error, request.id, bodyLimitBytes);
  if (mapped.internal) {
    logger.error(
      { err: error, request_id: request.id, method: request.method, url: request.url },
      'request failed unexpectedly',
    );
  } else if (mapped.status >= 500) {
    // An expected refusal (database away, breaker open, load shed): the message says why; a stack trace per
    // refused request would only bury the log during a burst.
    logger.warn(
      {
        request_id: request.id,
        method: request.method,
        url: request.url,
        code: mapped.code,
        err: error instanceof Error ? error.message : String(error),
      },
      'request refused: service unavailable',
    );
  }
  for (const [name, value] of Object.entries(mapped.headers ?? {})) void reply.header(name, value);
  // Framework errors (a bad URL) are answered before the onRequest hook that sets it.
  void reply.header('x-request-id', request.id);
  const body: ErrorBody = {
    error: { code: mapped.code, message: mapped.message, ...(mapped.details && { details: mapped.details }) },
  };
  return reply.code(mapped.status).type('application/json; charset=utf-8').send(body);
}
