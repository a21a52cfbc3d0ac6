import { describe, expect, it } from 'vitest';
import { isConnectionError, isTransientDatabaseError } from '../../../src/db/sqlState.ts';

describe('isTransientDatabaseError', () => {
  it.each([
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), true],
    ['admin shutdown 57P01', Object.assign(new Error('terminating connection'), { code: '57P01' }), true],
    ['pg connection lost without a code', new Error('Connection terminated unexpectedly'), true],
    [
      'pool exhausted',
      Object.assign(new Error('all 10 connections'), { code: 'TASKER_DATABASE_POOL_EXHAUSTED' }),
      true,
    ],
    // A loaded machine: the pool had room, but the new connection took longer than connectionTimeoutMillis.
    ["pg-pool's connect timeout", new Error('timeout exceeded when trying to connect'), true],
    ['unique violation 23505', Object.assign(new Error('duplicate key'), { code: '23505' }), false],
    ['a plain error', new Error('boom'), false],
    ['not an Error', 'timeout exceeded when trying to connect', false],
  ])('%s → %s', (_name, error, transient) => {
    expect(isTransientDatabaseError(error)).toBe(transient);
  });

  it("keeps pg-pool's connect timeout out of the connection errors the circuit breaker counts", () => {
    expect(isConnectionError(new Error('timeout exceeded when trying to connect'))).toBe(false);
  });
});
