/**
 * Errors of the HTTP layer itself (a malformed body, an unknown route, a wrong method): things no domain
 * code can raise. They share the `{error: {code, message, details}}` body and the stable-code contract of
 * `TaskerError` (codes documented in docs/errors.md), and carry the HTTP status and headers to answer with.
 */
import { TaskerError } from '../../domain/errors.ts';
import type { HttpLayerErrorCode } from '../../domain/errors.ts';

/** The HTTP layer's own codes: part of the one code list (TaskerErrorCode), documented in docs/errors.md. */
export type ApiErrorCode = HttpLayerErrorCode;

export class ApiError extends TaskerError {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: ApiErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(code, message, {
      ...(options.details !== undefined && { details: options.details }),
      ...(options.cause !== undefined && { cause: options.cause }),
    });
    this.status = status;
    this.headers = options.headers ?? {};
  }
}

/** One problem with one input field: `location` says which part of the request it is in. */
export interface FieldProblem {
  field: string;
  location?: 'body' | 'query' | 'path' | 'header';
  message: string;
}

/** Echoes client input in a message without letting a huge or binary value flood it. */
export function quoteInput(value: unknown, max = 64): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? typeof value);
  const printable = text.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const shown = printable.length > max ? `${printable.slice(0, max)}…` : printable;
  return typeof value === 'string' ? JSON.stringify(shown) : shown;
}
