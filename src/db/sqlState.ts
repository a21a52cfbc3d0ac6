/**
 * Database errors are classified by SQLSTATE code, never by message text.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export const SqlState = {
  uniqueViolation: '23505',
  invalidParameterValue: '22023',
  undefinedTable: '42P01',
  undefinedFunction: '42883',
  invalidCatalogName: '3D000',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  queryCanceled: '57014',
} as const;

export function sqlStateOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/**
 * Errors that mean the connection or server went away, not that the statement was wrong. A circuit breaker
 * refusing a call (TASKER_CIRCUIT_OPEN) counts too: it refuses because the server went away, and callers
 * retry it the same way.
 */
export function isConnectionError(error: unknown): boolean {
  if (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    (error.code === 'TASKER_DATABASE_UNAVAILABLE' || error.code === 'TASKER_CIRCUIT_OPEN')
  ) {
    return true;
  }
  const state = sqlStateOf(error);
  if (state !== undefined) return state.startsWith('08') || state.startsWith('57P');
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code);
  }
  // node-postgres reports a connection that died under it with plain Errors, without a code.
  return error instanceof Error && PG_CONNECTION_LOST.test(error.message);
}

const PG_CONNECTION_LOST =
  /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable)/;

/**
 * Worth retrying after a pause: the connection or server went away, or every pool connection was busy
 * (TASKER_DATABASE_POOL_EXHAUSTED). Loops log these at warn and try again; anything else is a real failure.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  if (isPoolTimeout(error)) return true;
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    error.code === 'TASKER_DATABASE_POOL_EXHAUSTED'
  );
}

/**
 * pg-pool giving up on a connection after connectionTimeoutMillis with a plain Error. PostgresDatabase turns
 * it into TASKER_DATABASE_POOL_EXHAUSTED when every connection was checked out; with room left, a new
 * connection did not finish connecting in time (a server or machine under load). Either way a later try can
 * succeed. It is not a connection error for the circuit breaker: nothing says the server is gone.
 */
export function isPoolTimeout(error: unknown): boolean {
  return error instanceof Error && /^timeout exceeded when trying to connect/i.test(error.message);
}
