import { randomUUID } from 'node:crypto';
import type { Database, ListenConnection } from '../../db/database.ts';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';

/**
 * The one LISTEN connection of a process.
 *
 * NOTIFY is a wake-up hint, never the source of truth, so this class is about noticing when hints stop
 * arriving and telling callers to look for themselves:
 *  - a heartbeat sends a NOTIFY through the normal pool and expects it back on the listen connection;
 *    the first one is the start-up self-test that catches a transaction pooler swallowing notifications;
 *  - a lost connection is re-opened with capped exponential backoff and jitter, all channels re-LISTENed;
 *  - after every (re)connect, `onConnected` callbacks run so callers read whatever arrived unseen.
 */
export interface NotificationListenerOptions {
  /** How often to prove that notifications still arrive. @defaultValue 30000 */
  heartbeatIntervalMs?: number;
  /** How long a heartbeat (and the start-up self-test) waits for its own notification. @defaultValue 5000 */
  heartbeatTimeoutMs?: number;
  /** First reconnect delay; doubles per failed attempt. @defaultValue 500 */
  reconnectBaseMs?: number;
  /** Cap on the reconnect delay. @defaultValue 4000 */
  reconnectMaxMs?: number;
  /** Timeout opening the listen connection. @defaultValue the driver's */
  connectTimeoutMs?: number;
  /** Give up (status `failed`) after this many failed attempts in a row. @defaultValue Infinity */
  maxReconnectAttempts?: number;
  logger?: Logger;
}

type ListenerStatus = 'stopped' | 'connecting' | 'connected' | 'reconnecting' | 'failed';

export interface ListenerState {
  status: ListenerStatus;
  connected: boolean;
  channels: string[];
  /** Successful re-connections after the first connection. */
  reconnects: number;
  /** Failed connection attempts since the last success. */
  consecutiveFailures: number;
  /** Notifications delivered on subscribed channels since start (heartbeats excluded). */
  notificationsReceived: number;
  /** Last notification of any kind, heartbeats included. */
  lastEventAt: Date | null;
  lastConnectedAt: Date | null;
  /** null until the self-test ran; false when our own NOTIFY did not come back (pooler, broken path). */
  notificationsVerified: boolean | null;
  lastError: string | null;
  backendPid: number | null;
  /**
   * Notification lag: how long the last heartbeat's NOTIFY (sent through the pool) took to arrive on the
   * listen connection. null until one arrived; the heartbeat timeout when the last one never did.
   */
  lagMs: number | null;
}

export type NotificationHandler = (payload: string, channel: string) => void;
export type ConnectedHandler = (event: { reconnect: boolean }) => void;

export class NotificationListener {
  private readonly db: Database;
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly reconnectBaseMs: number;
  private readonly reconnectMaxMs: number;
  private readonly maxReconnectAttempts: number;
  private readonly connectTimeoutMs: number | undefined;
  private readonly logger: Logger;
  /** Private per listener, so no process wakes for another's heartbeats. */
  private readonly heartbeatChannel = `tasker_listener_heartbeat_${randomUUID().replace(/-/g, '')}`;

  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  private readonly connectedHandlers = new Set<ConnectedHandler>();
  private connection: ListenConnection | null = null;
  private listened = new Set<string>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatWaiters = new Map<string, () => void>();
  private heartbeatSeq = 0;
  private heartbeatRunning = false;
  private everConnected = false;
  private stopping = false;
  private startPromise: Promise<void> | null = null;

  private readonly stateData: ListenerState = {
    status: 'stopped',
    connected: false,
    channels: [],
    reconnects: 0,
    consecutiveFailures: 0,
    notificationsReceived: 0,
    lastEventAt: null,
    lastConnectedAt: null,
    notificationsVerified: null,
    lastError: null,
    backendPid: null,
    lagMs: null,
  };

  constructor(db: Database, options: NotificationListenerOptions = {}) {
    this.db = db;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 30_000;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 5_000;
    this.reconnectBaseMs = options.reconnectBaseMs ?? 500;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 4_000;
    this.maxReconnectAttempts = options.maxReconnectAttempts ?? Number.POSITIVE_INFINITY;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.logger = options.logger ?? silentLogger;
  }

  get state(): Readonly<ListenerState> {
    return { ...this.stateData, channels: [...this.handlers.keys()] };
  }

  /**
   * Connects and runs the self-test. Resolves after the first attempt whether or not it succeeded: a
   * listener that cannot connect keeps retrying in the background and says so in `state`.
   * Safe to call twice.
   */
  start(): Promise<void> {
    this.startPromise ??= (async () => {
      this.stopping = false;
      this.stateData.status = 'connecting';
      await this.connect();
    })();
    return this.startPromise;
  }

  /** Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.startPromise = null;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.heartbeatTimer = null;
    this.reconnectTimer = null;
    for (const resolve of this.heartbeatWaiters.values()) resolve();
    this.heartbeatWaiters.clear();
    const connection = this.connection;
    this.connection = null;
    this.listened = new Set();
    this.stateData.status = 'stopped';
    this.stateData.connected = false;
    if (connection !== null) await connection.close();
  }

  /** Calls `handler` for every notification on `channel`. Returns the unsubscribe function. */
  async subscribe(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    await this.listenOnCurrent(channel);
    return async () => {
      const current = this.handlers.get(channel);
      if (current === undefined) return;
      current.delete(handler);
      if (current.size > 0) return;
      this.handlers.delete(channel);
      const connection = this.connection;
      if (connection !== null && this.listened.delete(channel)) {
        await connection.unlisten(channel).catch(() => undefined);
      }
    };
  }

  /** Runs after every successful (re)connect, once all channels are listened: time to catch up. */
  onConnected(handler: ConnectedHandler): () => void {
    this.connectedHandlers.add(handler);
    return () => this.connectedHandlers.delete(handler);
  }

  /**
   * Sends a NOTIFY through the pool and waits for it on the listen connection. True when it arrived.
   * This is both the start-up self-test and the periodic heartbeat.
   */
  async verifyNotifications(): Promise<boolean> {
    const connection = this.connection;
    if (connection === null) return false;
    const token = `${++this.heartbeatSeq}`;
    const sentAt = performance.now();
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.heartbeatWaiters.delete(token);
        resolve(false);
      }, this.heartbeatTimeoutMs);
      timer.unref();
      this.heartbeatWaiters.set(token, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    try {
      await this.db.query('SELECT pg_notify($1, $2)', [this.heartbeatChannel, token]);
    } catch (error) {
      this.heartbeatWaiters.get(token)?.();
      this.stateData.lastError = `heartbeat send failed: ${errorMessage(error)}`;
      return false;
    }
    const ok = await arrived;
    if (this.stopping || connection !== this.connection) return ok;
    this.stateData.lagMs = ok
      ? Math.round((performance.now() - sentAt) * 100) / 100
      : this.heartbeatTimeoutMs;
    if (ok && this.stateData.notificationsVerified !== true) {
      if (this.stateData.notificationsVerified === false) this.logger.info('notifications arrive again');
      this.stateData.notificationsVerified = true;
    }
    return ok;
  }

  private async listenOnCurrent(channel: string): Promise<void> {
    const connection = this.connection;
    if (connection === null || this.listened.has(channel)) return;
    this.listened.add(channel);
    try {
      await connection.listen(channel);
    } catch (error) {
      this.listened.delete(channel);
      // A failed LISTEN on a live connection means the connection is broken; reconnect re-listens all.
      this.handleLost(connection, error);
    }
  }

  private async connect(): Promise<void> {
    let connection: ListenConnection | null = null;
    try {
      connection = await this.db.openListenConnection(
        {
          onNotification: (channel, payload) => this.dispatch(channel, payload),
          onLost: (error) => this.handleLost(connection, error),
        },
        this.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: this.connectTimeoutMs },
      );
      if (this.stopping) {
        await connection.close();
        return;
      }
      this.connection = connection;
      this.listened = new Set();
      await connection.listen(this.heartbeatChannel);
      for (const channel of this.handlers.keys()) {
        this.listened.add(channel);
        await connection.listen(channel);
      }
    } catch (error) {
      if (connection !== null && this.connection === connection) this.connection = null;
      await connection?.close().catch(() => undefined);
      this.connectFailed(error);
      return;
    }
    const reconnect = this.everConnected;
    this.everConnected = true;
    if (reconnect) this.stateData.reconnects += 1;
    this.stateData.status = 'connected';
    this.stateData.connected = true;
    this.stateData.consecutiveFailures = 0;
    this.stateData.lastConnectedAt = new Date();
    this.stateData.backendPid = connection.backendPid;
    this.logger.info(
      { channels: [...this.handlers.keys()], reconnect, backendPid: connection.backendPid },
      reconnect ? 'listen connection re-established' : 'listen connection established',
    );
    for (const handler of this.connectedHandlers) {
      try {
        handler({ reconnect });
      } catch (error) {
        this.logger.error({ err: errorMessage(error) }, 'onConnected handler failed');
      }
    }
    this.startHeartbeat();
    const verified = await this.verifyNotifications();
    if (!verified && !this.stopping && this.connection === connection) {
      this.stateData.notificationsVerified = false;
      this.logger.warn(
        { database: this.db.displayName },
        'LISTEN self-test failed: a NOTIFY sent through the pool did not reach the listen connection. ' +
          'A transaction pooler (PgBouncer in transaction mode) between Tasker and PostgreSQL causes this; ' +
          'point Tasker at PostgreSQL directly or use PollingOnly mode. Polling still delivers work.',
      );
    }
  }

  private connectFailed(error: unknown): void {
    this.stateData.connected = false;
    this.stateData.consecutiveFailures += 1;
    this.stateData.lastError = errorMessage(error);
    if (this.stopping) return;
    const delay = this.backoffDelay(this.stateData.consecutiveFailures);
    if (this.stateData.consecutiveFailures > this.maxReconnectAttempts) {
      // Unhealthy from here on (health and readiness say so), but never given up: a database down for minutes
      // comes back, and the process must then take work again without a restart.
      if (this.stateData.status !== 'failed') {
        this.logger.error(
          {
            attempts: this.stateData.consecutiveFailures - 1,
            err: this.stateData.lastError,
            retryInMs: delay,
          },
          'listen connection failed max reconnect attempts in a row: unhealthy; still retrying',
        );
      }
      this.stateData.status = 'failed';
      this.scheduleReconnect(delay);
      return;
    }
    this.stateData.status = this.everConnected ? 'reconnecting' : 'connecting';
    this.logger.warn(
      { err: this.stateData.lastError, retryInMs: delay },
      'listen connection failed; retrying',
    );
    this.scheduleReconnect(delay);
  }

  private handleLost(connection: ListenConnection | null, error: unknown): void {
    if (this.stopping || connection === null || connection !== this.connection) return;
    this.connection = null;
    this.listened = new Set();
    this.stateData.connected = false;
    this.stateData.status = 'reconnecting';
    this.stateData.lastError = errorMessage(error);
    this.stateData.backendPid = null;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.logger.warn({ err: this.stateData.lastError }, 'listen connection lost; reconnecting');
    void connection.close().catch(() => undefined);
    this.scheduleReconnect(this.backoffDelay(1));
  }

  /**
   * The database is back (a circuit breaker's probe got an answer): try the connection now instead of at the
   * end of the current backoff, which after an outage of seconds may be seconds away. A no-op unless a
   * reconnect is waiting; the next failure backs off from where it was.
   */
  reconnectNow(): void {
    if (this.stopping || this.reconnectTimer === null) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    void this.connect();
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.reconnectTimer !== null) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delayMs);
    this.reconnectTimer.unref();
  }

  /** Capped exponential backoff with "equal jitter": half fixed, half random, so replicas spread out. */
  private backoffDelay(attempt: number): number {
    const capped = Math.min(this.reconnectMaxMs, this.reconnectBaseMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(capped / 2 + Math.random() * (capped / 2));
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeatRunning || this.stopping) return;
    const connection = this.connection;
    if (connection === null) return;
    this.heartbeatRunning = true;
    try {
      if (await this.verifyNotifications()) return;
      // Our own NOTIFY did not come back. If the session no longer answers either, it is dead: reconnect.
      // If it answers, notifications are being lost elsewhere (a pooler); reconnecting would not help.
      const alive = await withTimeout(connection.ping(), this.heartbeatTimeoutMs);
      if (!alive) {
        this.handleLost(connection, new Error('listen connection stopped answering'));
      } else if (this.stateData.notificationsVerified !== false) {
        this.stateData.notificationsVerified = false;
        this.logger.warn('listen connection is alive but notifications are not arriving; relying on polling');
      }
    } finally {
      this.heartbeatRunning = false;
    }
  }

  private dispatch(channel: string, payload: string): void {
    this.stateData.lastEventAt = new Date();
    if (channel === this.heartbeatChannel) {
      this.heartbeatWaiters.get(payload)?.();
      this.heartbeatWaiters.delete(payload);
      return;
    }
    const set = this.handlers.get(channel);
    if (set === undefined) return;
    this.stateData.notificationsReceived += 1;
    for (const handler of set) {
      try {
        handler(payload, channel);
      } catch (error) {
        this.logger.error({ channel, err: errorMessage(error) }, 'notification handler failed');
      }
    }
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolves true when `promise` settles successfully within `ms`, false on rejection or timeout. */
function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}
