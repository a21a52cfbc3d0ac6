/**
 * The narrow database interface everything above `db/` uses. Two implementations: PostgreSQL through a
 * `pg` pool (`postgresDatabase.ts`) and an embedded PGlite database (`pgliteDatabase.ts`).
 */

export type SqlParam =
  string | number | boolean | bigint | null | Date | Buffer | readonly unknown[] | object;

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface QueryOptions {
  /**
   * A name makes the PostgreSQL implementation use a named prepared statement, parsed and planned once
   * per connection. Use it for hot-path queries whose text never changes.
   */
  name?: string;
}

export interface Queryable {
  query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlParam[],
    options?: QueryOptions,
  ): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** A connection kept for LISTEN only: notifications arrive here, never through the pool. */
export interface ListenConnection {
  /** Backend process id, so tests and operators can find (and terminate) the listening session. */
  readonly backendPid: number | null;
  listen(channel: string): Promise<void>;
  unlisten(channel: string): Promise<void>;
  /** A round trip on this very connection: proves the session is still alive. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface ListenConnectionOptions {
  /** Give up opening the connection after this long. @defaultValue the driver's (none) */
  connectTimeoutMs?: number;
}

export interface ListenHandlers {
  onNotification(channel: string, payload: string): void;
  /** The connection is gone (network, backend terminated, server restart). Called at most once. */
  onLost(error: Error): void;
}

export interface PoolStats {
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

export type DatabaseKind = 'postgres' | 'pglite';

export interface Database extends Queryable {
  readonly kind: DatabaseKind;
  /** The connection target with any password redacted: safe for logs and errors. */
  readonly displayName: string;
  /** Runs `fn` in one transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  openListenConnection(
    handlers: ListenHandlers,
    options?: ListenConnectionOptions,
  ): Promise<ListenConnection>;
  poolStats(): PoolStats;
  /**
   * Asks the server to cancel every statement this pool is running now (a shutdown deadline passed): each fails
   * with SQLSTATE 57014 and its connection comes back. Answers how many were asked; 0 where there is nothing
   * to cancel (the embedded database runs one statement at a time in-process).
   */
  cancelRunning(): Promise<number>;
  /** Safe to call twice. */
  close(): Promise<void>;
}
