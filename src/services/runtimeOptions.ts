/**
 * The configuration turned into the options of the pool and of the LISTEN connection. It lives with the services,
 * which put the pieces together, so that config/ knows nothing of db/ or messaging/ (docs/architecture.md).
 */
import type { PostgresPoolOptions } from '../db/postgresDatabase.ts';
import type { NotificationListenerOptions } from '../messaging/pgmq/notificationListener.ts';
import type { TaskerConfig } from '../config/schema.ts';

/** `[database]` → the pool of PostgresDatabase. */
export function poolOptions(config: TaskerConfig): PostgresPoolOptions {
  const db = config.database;
  return {
    maxConnections: db.max_connections,
    minConnections: db.min_connections,
    connectionTimeoutMs: db.connection_timeout_ms,
    idleTimeoutSeconds: db.idle_timeout_seconds,
    maxLifetimeSeconds: db.max_lifetime_seconds,
    statementTimeoutMs: db.statement_timeout_ms,
    idleInTransactionTimeoutMs: db.idle_in_transaction_timeout_ms,
    listenUrl: db.listen_url,
  };
}

/** `[pgmq]` → the LISTEN connection's heartbeat and reconnect cap. */
export function listenerOptions(config: TaskerConfig): NotificationListenerOptions {
  return {
    heartbeatIntervalMs: config.pgmq.heartbeat_interval_ms,
    heartbeatTimeoutMs: config.pgmq.heartbeat_timeout_ms,
    reconnectMaxMs: config.pgmq.reconnect_max_ms,
  };
}
