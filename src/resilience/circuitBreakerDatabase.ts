import type {
  Database,
  DatabaseKind,
  ListenConnection,
  ListenConnectionOptions,
  ListenHandlers,
  PoolStats,
  QueryOptions,
  QueryResult,
  Queryable,
  SqlParam,
} from '../db/database.ts';
import type { CircuitBreaker } from './circuitBreaker.ts';

/**
 * A Database whose statements and transactions go through a circuit breaker: while it is open they fail at
 * once with CircuitError (TASKER_CIRCUIT_OPEN) instead of waiting for a connection that will not come.
 *
 * A transaction is one call for the breaker: its statements run on the inner connection, and its outcome
 * (commit, or the error that rolled it back) is counted once. The LISTEN connection is not guarded: the
 * notification listener reconnects with its own capped backoff, and a breaker refusing its attempts would
 * only delay the catch-up read that follows a reconnect.
 */
export class CircuitBreakerDatabase implements Database {
  readonly #inner: Database;
  readonly breaker: CircuitBreaker;

  constructor(inner: Database, breaker: CircuitBreaker) {
    this.#inner = inner;
    this.breaker = breaker;
  }

  get kind(): DatabaseKind {
    return this.#inner.kind;
  }

  get displayName(): string {
    return this.#inner.displayName;
  }

  query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlParam[],
    options?: QueryOptions,
  ): Promise<QueryResult<Row>> {
    return this.breaker.execute(() => this.#inner.query<Row>(sql, params, options));
  }

  exec(sql: string): Promise<void> {
    return this.breaker.execute(() => this.#inner.exec(sql));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.breaker.execute(() => this.#inner.transaction(fn));
  }

  openListenConnection(
    handlers: ListenHandlers,
    options?: ListenConnectionOptions,
  ): Promise<ListenConnection> {
    return this.#inner.openListenConnection(handlers, options);
  }

  poolStats(): PoolStats {
    return this.#inner.poolStats();
  }

  /** Not guarded: it is how a shutdown gets its connections back, whatever the breaker says. */
  cancelRunning(): Promise<number> {
    return this.#inner.cancelRunning();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
