import pg from 'pg';
import type {
  Database,
  ListenConnection,
  ListenHandlers,
  ListenConnectionOptions,
  PoolStats,
  QueryOptions,
  QueryResult,
  Queryable,
  SqlParam,
} from './database.ts';
import { redactUrl } from '../domain/secretRedaction.ts';
import { DatabaseError } from '../domain/errors.ts';
import { isConnectionError, isPoolTimeout, SqlState, sqlStateOf } from './sqlState.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';

/** Pool settings; the names mirror the `[database]` configuration keys. */
export interface PostgresPoolOptions {
  /** @defaultValue 10 */
  maxConnections?: number;
  /** @defaultValue 0 */
  minConnections?: number;
  /** How long to wait for a free connection before failing. @defaultValue 5000 */
  connectionTimeoutMs?: number;
  /** @defaultValue 300 */
  idleTimeoutSeconds?: number;
  /** @defaultValue 1800 */
  maxLifetimeSeconds?: number;
  /**
   * PostgreSQL cancels a statement of the pool that runs longer (SQLSTATE 57014, raised here as
   * TASKER_STATEMENT_TIMEOUT). @defaultValue none
   */
  statementTimeoutMs?: number;
  /** PostgreSQL ends a session idle inside a transaction this long. @defaultValue none */
  idleInTransactionTimeoutMs?: number;
  /**
   * The LISTEN connection's URL, when the pool's goes through a transaction pooler that loses LISTEN.
   * @defaultValue the pool's URL
   */
  listenUrl?: string;
  /** Shown in pg_stat_activity. @defaultValue 'tasker' */
  applicationName?: string;
  logger?: Logger;
}

function toQueryResult<Row>(result: pg.QueryResult): QueryResult<Row> {
  return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
}

function runQuery<Row>(
  target: pg.Pool | pg.PoolClient,
  sql: string,
  params: readonly SqlParam[] | undefined,
  options: QueryOptions | undefined,
): Promise<QueryResult<Row>> {
  const config: pg.QueryConfig = { text: sql, values: params as unknown[] | undefined };
  if (options?.name !== undefined) config.name = options.name;
  return target.query(config).then((result) => toQueryResult<Row>(result));
}

export class PostgresDatabase implements Database {
  readonly kind = 'postgres' as const;
  readonly displayName: string;
  private readonly pool: pg.Pool;
  private readonly url: string;
  private readonly listenUrl: string;
  private readonly applicationName: string;
  private readonly logger: Logger;
  private closed = false;
  private readonly listenClients = new Set<pg.Client>();
  /** Connections checked out now, for cancelRunning. */
  private readonly busy = new Set<pg.PoolClient>();

  constructor(url: string, options: PostgresPoolOptions = {}) {
    this.url = url;
    this.listenUrl = options.listenUrl === undefined || options.listenUrl === '' ? url : options.listenUrl;
    this.displayName = redactUrl(url);
    this.applicationName = options.applicationName ?? 'tasker';
    this.logger = options.logger ?? silentLogger;
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 10,
      min: options.minConnections ?? 0,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
      idleTimeoutMillis: (options.idleTimeoutSeconds ?? 300) * 1000,
      maxLifetimeSeconds: options.maxLifetimeSeconds ?? 1800,
      // Session settings sent at connect: a bound on every statement, enforced by the server itself (it keeps
      // running on the server after a client gives up; this cancels it there).
      ...(options.statementTimeoutMs !== undefined && { statement_timeout: options.statementTimeoutMs }),
      ...(options.idleInTransactionTimeoutMs !== undefined && {
        idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs,
      }),
      application_name: this.applicationName,
      keepAlive: true,
    });
    // An idle client whose backend dies emits here; without a listener Node would crash the process.
    this.pool.on('error', (error) => {
      this.logger.warn({ err: error.message }, 'idle database connection lost; the pool will replace it');
    });
  }

  query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlParam[],
    options?: QueryOptions,
  ): Promise<QueryResult<Row>> {
    return this.withClient((client) => runQuery<Row>(client, sql, params, options));
  }

  /**
   * Runs on a checked-out client. Unlike pg.Pool#query, a statement error (a unique violation, say) keeps
   * the connection: only connection errors discard it, so expected refusals cost no reconnect.
   */
  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const { client, lost, release } = await this.checkout();
    let releaseError: Error | undefined;
    try {
      return await fn(client);
    } catch (error) {
      if (isConnectionError(error)) releaseError = error as Error;
      throw this.statementTimedOut(error) ?? this.wrapConnectError(error);
    } finally {
      release(releaseError ?? lost());
    }
  }

  /**
   * A pool connection with an error listener for as long as it is checked out. The pool listens only while a
   * connection is idle; a backend terminated between two statements of a checked-out connection (an
   * administrator's pg_terminate_backend, a failover) emits 'error' on the client, which with no listener
   * crashes the process. Here it marks the connection lost, so it is destroyed instead of reused.
   */
  private async checkout(): Promise<{
    client: pg.PoolClient;
    lost: () => Error | undefined;
    release: (error?: Error) => void;
  }> {
    const client = await this.pool.connect().catch((error: unknown) => {
      throw this.poolExhausted(error) ?? this.wrapConnectError(error);
    });
    let lostError: Error | undefined;
    const onError = (error: Error): void => {
      lostError = error;
    };
    client.on('error', onError);
    this.busy.add(client);
    return {
      client,
      lost: () => lostError,
      release: (error) => {
        this.busy.delete(client);
        client.off('error', onError);
        client.release(error);
      },
    };
  }

  async exec(sql: string): Promise<void> {
    await this.withClient((client) => client.query(sql));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const { client, lost, release } = await this.checkout();
    let releaseError: Error | undefined;
    try {
      await client.query('BEGIN');
      const tx: Queryable = {
        query: <Row>(sql: string, params?: readonly SqlParam[], options?: QueryOptions) =>
          runQuery<Row>(client, sql, params, options),
        exec: async (sql: string) => {
          await client.query(sql);
        },
      };
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (isConnectionError(error)) {
        releaseError = error as Error;
      } else {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          releaseError = rollbackError as Error;
        });
      }
      throw error;
    } finally {
      // Passing an error destroys the client instead of returning a broken one to the pool.
      release(releaseError ?? lost());
    }
  }

  async openListenConnection(
    handlers: ListenHandlers,
    options: ListenConnectionOptions = {},
  ): Promise<ListenConnection> {
    const client = new pg.Client({
      connectionString: this.listenUrl,
      ...(options.connectTimeoutMs !== undefined && { connectionTimeoutMillis: options.connectTimeoutMs }),
      application_name: `${this.applicationName}-listener`,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    let lost = false;
    const markLost = (error: Error): void => {
      if (lost) return;
      lost = true;
      this.listenClients.delete(client);
      handlers.onLost(error);
    };
    client.on('notification', (message) => handlers.onNotification(message.channel, message.payload ?? ''));
    client.on('error', (error) => markLost(error));
    client.on('end', () => markLost(new Error('listen connection ended')));
    try {
      await client.connect();
    } catch (error) {
      lost = true;
      await client.end().catch(() => undefined);
      throw this.wrapConnectError(error, this.listenUrl === this.url ? undefined : 'listen');
    }
    this.listenClients.add(client);
    const pidResult = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const backendPid = pidResult.rows[0]?.pid ?? null;
    // One statement at a time on the connection (subscribers come and go concurrently): pg would queue them
    // itself, but that is deprecated and goes away in pg 9.
    let previous: Promise<unknown> = Promise.resolve();
    const inTurn = (sql: string): Promise<void> => {
      const next = previous.then(
        () => client.query(sql),
        () => client.query(sql),
      );
      previous = next.catch(() => undefined);
      return next.then(() => undefined);
    };
    return {
      backendPid,
      listen: (channel) => inTurn(`LISTEN ${client.escapeIdentifier(channel)}`),
      unlisten: (channel) => inTurn(`UNLISTEN ${client.escapeIdentifier(channel)}`),
      ping: () => inTurn('SELECT 1'),
      close: async () => {
        lost = true;
        this.listenClients.delete(client);
        await client.end().catch(() => undefined);
      },
    };
  }

  poolStats(): PoolStats {
    return {
      max: this.pool.options.max,
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.listenClients].map((client) => client.end().catch(() => undefined)));
    this.listenClients.clear();
    await this.pool.end();
  }

  async cancelRunning(): Promise<number> {
    const pids = [...this.busy]
      .map((client) => (client as pg.PoolClient & { processID?: number }).processID)
      .filter((pid): pid is number => typeof pid === 'number');
    if (pids.length === 0) return 0;
    // On a connection of its own: every pool connection may be the one that is stuck.
    const canceller = new pg.Client({
      connectionString: this.url,
      application_name: `${this.applicationName}-cancel`,
      connectionTimeoutMillis: 2_000,
      statement_timeout: 2_000,
    });
    canceller.on('error', () => undefined);
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS t(pid)', [pids]);
    } finally {
      await canceller.end().catch(() => undefined);
    }
    return pids.length;
  }

  /** Connection failures carry the redacted target so the operator sees which database was meant. */
  /**
   * pg's pool gives up waiting for a free connection with a plain Error. When every connection is checked out
   * that is exhaustion, not an unreachable server: say so, and how to fix it. (A timeout with free room is a
   * connect that did not finish: the server is unreachable.)
   */
  private poolExhausted(error: unknown): DatabaseError | undefined {
    if (!isPoolTimeout(error)) return undefined;
    const max = this.pool.options.max ?? 10;
    if (this.pool.totalCount < max) return undefined;
    const waitedMs = this.pool.options.connectionTimeoutMillis ?? 0;
    return new DatabaseError(
      'TASKER_DATABASE_POOL_EXHAUSTED',
      `all ${max} connections of the pool to ${this.displayName} stayed busy for ${waitedMs} ms, so this query got none; raise [database] max_connections or connection_timeout_ms, or lower the load`,
      { details: { database: this.displayName, max_connections: max, waited_ms: waitedMs }, cause: error },
    );
  }

  /**
   * The server cancelled a statement (SQLSTATE 57014): with a statement timeout set, almost always because it
   * ran past it (else an administrator's pg_cancel_backend). Name the bound and the key that sets it.
   */
  private statementTimedOut(error: unknown): DatabaseError | undefined {
    if (sqlStateOf(error) !== SqlState.queryCanceled) return undefined;
    const limitMs = this.pool.options.statement_timeout;
    if (typeof limitMs !== 'number') return undefined;
    return new DatabaseError(
      'TASKER_STATEMENT_TIMEOUT',
      `PostgreSQL cancelled a statement on ${this.displayName}: it ran longer than [database] statement_timeout_ms ` +
        `(${limitMs} ms), or an administrator cancelled it. Retry; if it recurs, look for an unanalysed table ` +
        '(docs/operations.md), or raise statement_timeout_ms',
      { details: { database: this.displayName, statement_timeout_ms: limitMs }, cause: error },
    );
  }

  /** @param which `listen` when the connection was to `[database] listen_url` rather than the main URL */
  private wrapConnectError(error: unknown, which?: 'listen'): unknown {
    if (!isConnectionError(error)) return error;
    const reason = error instanceof Error ? error.message : String(error);
    const target = which === 'listen' ? redactUrl(this.listenUrl) : this.displayName;
    const fix =
      which === 'listen'
        ? 'Check that PostgreSQL is reachable there and [database] listen_url is right; it is the URL for the LISTEN connection only.'
        : 'Check that PostgreSQL is running and DATABASE_URL is right.';
    return new DatabaseError(
      'TASKER_DATABASE_UNAVAILABLE',
      `cannot reach the database ${which === 'listen' ? 'for LISTEN ' : ''}at ${target}: ${reason}. ${fix}`,
      { details: { database: target, ...(which === 'listen' && { connection: 'listen' }) }, cause: error },
    );
  }
}
