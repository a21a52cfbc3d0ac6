import type { Database } from '../../db/database.ts';
import { sqlStateOf, SqlState } from '../../db/sqlState.ts';
import { MessagingError, ValidationError } from '../../domain/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';
import type {
  MessagingHealth,
  MessagingProvider,
  NackOptions,
  QueueDepth,
  QueueMessage,
  QueueSignal,
  ReceiveOptions,
  SendOptions,
  Subscription,
} from '../messagingProvider.ts';
import {
  assertValidQueueName,
  MESSAGE_READY_CHANNEL,
  messageReadyChannel,
  queueNamespace,
} from '../queueName.ts';
import { NotificationListener } from './notificationListener.ts';
import type { NotificationListenerOptions } from './notificationListener.ts';

interface MessageRow {
  msg_id: string | number | bigint;
  read_ct: number;
  enqueued_at: Date | string;
  vt: Date | string;
  message: unknown;
  headers: Record<string, unknown> | null;
}

/** The signal tasker.pgmq_send_with_notify / _batch_with_notify put in a notification. */
interface ReadySignal {
  event_type?: string;
  queue_name?: string;
  msg_id?: number | string;
  message_count?: number;
  ready_at?: string;
}

export interface PgmqProviderOptions {
  /** Share one listener per process; when omitted the provider makes (and owns) one on first subscribe. */
  listener?: NotificationListener;
  listenerOptions?: NotificationListenerOptions;
  logger?: Logger;
}

const toDate = (value: Date | string): Date => (value instanceof Date ? value : new Date(value));

function assertNonNegativeInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `${what} must be a whole number of 0 or more, got ${value}`,
    );
  }
}

/**
 * MessagingProvider over the PGMQ-compatible SQL queue (src/db/sql/pgmq_queues.sql, pgmq_messages.sql and
 * queue_notifications.sql). Every call is one round trip to a SQL function; sends also NOTIFY in the same
 * transaction.
 */
export class PgmqMessagingProvider implements MessagingProvider {
  readonly backend = 'pgmq' as const;
  private readonly db: Database;
  private readonly logger: Logger;
  private readonly ownsListener: boolean;
  private listener: NotificationListener | null;
  private readonly listenerOptions: NotificationListenerOptions;
  private readonly subscriptions = new Set<Subscription>();
  private readonly knownQueues = new Set<string>();

  constructor(db: Database, options: PgmqProviderOptions = {}) {
    this.db = db;
    this.logger = options.logger ?? silentLogger;
    this.listener = options.listener ?? null;
    this.ownsListener = options.listener === undefined;
    this.listenerOptions = { logger: this.logger, ...options.listenerOptions };
  }

  /** The listener behind `subscribe` (created on first use), for health and metrics. */
  get notificationListener(): NotificationListener | null {
    return this.listener;
  }

  async ensureQueue(queue: string): Promise<void> {
    assertValidQueueName(queue);
    if (this.knownQueues.has(queue)) return;
    await this.run(queue, () => this.db.query('SELECT pgmq.create($1)', [queue]));
    this.knownQueues.add(queue);
  }

  async send<T>(queue: string, payload: T, options: SendOptions = {}): Promise<string> {
    assertValidQueueName(queue);
    const delay = options.delaySeconds ?? 0;
    assertNonNegativeInteger(delay, 'delaySeconds');
    const { rows } = await this.run(queue, () =>
      options.notify === false
        ? this.db.query<{ msg_id: string }>(
            'SELECT pgmq.send($1, $2::jsonb, $3::integer) AS msg_id',
            [queue, JSON.stringify(payload), delay],
            {
              name: 'tasker_pgmq_send',
            },
          )
        : this.db.query<{ msg_id: string }>(
            'SELECT tasker.pgmq_send_with_notify($1, $2::jsonb, $3::integer) AS msg_id',
            [queue, JSON.stringify(payload), delay],
            { name: 'tasker_pgmq_send_notify' },
          ),
    );
    return String(rows[0]?.msg_id);
  }

  async sendBatch<T>(queue: string, payloads: readonly T[], options: SendOptions = {}): Promise<string[]> {
    assertValidQueueName(queue);
    if (payloads.length === 0) return [];
    const delay = options.delaySeconds ?? 0;
    assertNonNegativeInteger(delay, 'delaySeconds');
    const messages = payloads.map((payload) => JSON.stringify(payload));
    const { rows } = await this.run(queue, () =>
      options.notify === false
        ? this.db.query<{ msg_id: string }>(
            'SELECT msg_id FROM pgmq.send_batch($1, $2::jsonb[], $3::integer) AS msg_id',
            [queue, messages, delay],
          )
        : this.db.query<{ msg_id: string }>(
            'SELECT msg_id FROM tasker.pgmq_send_batch_with_notify($1, $2::jsonb[], $3::integer) AS msg_id',
            [queue, messages, delay],
          ),
    );
    return rows.map((row) => String(row.msg_id));
  }

  async receive<T>(queue: string, options: ReceiveOptions): Promise<QueueMessage<T>[]> {
    assertValidQueueName(queue);
    if (!Number.isInteger(options.limit) || options.limit < 1) {
      throw new ValidationError(
        'TASKER_INVALID_ARGUMENT',
        `receive limit must be a whole number of 1 or more, got ${options.limit}`,
      );
    }
    assertNonNegativeInteger(options.visibilityTimeoutSeconds, 'visibilityTimeoutSeconds');
    const { rows } = await this.run(queue, () =>
      this.db.query<MessageRow>(
        'SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM pgmq.read($1, $2, $3)',
        [queue, options.visibilityTimeoutSeconds, options.limit],
        { name: 'tasker_pgmq_read' },
      ),
    );
    return rows.map((row) => ({
      id: String(row.msg_id),
      queue,
      payload: row.message as T,
      readCount: row.read_ct,
      enqueuedAt: toDate(row.enqueued_at),
      visibleAt: toDate(row.vt),
      headers: row.headers,
    }));
  }

  async ack(queue: string, id: string): Promise<boolean> {
    assertValidQueueName(queue);
    const { rows } = await this.run(queue, () =>
      this.db.query<{ ok: boolean }>('SELECT pgmq.archive($1, $2::bigint) AS ok', [queue, id], {
        name: 'tasker_pgmq_archive',
      }),
    );
    return rows[0]?.ok === true;
  }

  async nack(queue: string, id: string, options: NackOptions = {}): Promise<void> {
    if (options.requeue === false) {
      // PGMQ has no dead-letter queue; the archive keeps the message for inspection.
      await this.ack(queue, id);
      return;
    }
    await this.extendVisibility(queue, id, options.delaySeconds ?? 0);
  }

  async extendVisibility(queue: string, id: string, seconds: number): Promise<boolean> {
    assertValidQueueName(queue);
    assertNonNegativeInteger(seconds, 'visibility seconds');
    const { rows } = await this.run(queue, () =>
      this.db.query<{ msg_id: string }>(
        'SELECT msg_id FROM pgmq.set_vt($1, $2::bigint, $3)',
        [queue, id, seconds],
        {
          name: 'tasker_pgmq_set_vt',
        },
      ),
    );
    return rows.length > 0;
  }

  async queueDepth(queue: string): Promise<QueueDepth> {
    assertValidQueueName(queue);
    const { rows } = await this.run(queue, () =>
      this.db.query<{
        queue_length: string | number;
        queue_visible_length: string | number;
        oldest_msg_age_sec: number | null;
      }>('SELECT queue_length, queue_visible_length, oldest_msg_age_sec FROM pgmq.metrics($1)', [queue]),
    );
    const row = rows[0];
    return {
      total: Number(row?.queue_length ?? 0),
      visible: Number(row?.queue_visible_length ?? 0),
      oldestAgeSeconds: row?.oldest_msg_age_sec ?? null,
    };
  }

  async subscribe(queues: readonly string[], onSignal: (signal: QueueSignal) => void): Promise<Subscription> {
    queues.forEach((queue) => assertValidQueueName(queue));
    const wanted = new Set(queues);
    const listener = await this.ensureListener();
    const channels = [...new Set(queues.map((queue) => messageReadyChannel(queueNamespace(queue))))];

    const onPayload = (payload: string): void => {
      const signal = parseSignal(payload);
      if (signal !== null && wanted.has(signal.queue)) onSignal(signal);
    };
    const catchUp = (): void => {
      for (const queue of wanted) onSignal({ kind: 'catch_up', queue });
    };
    // The bare channel carries every queue's signals as well (DESIGN §3), which the namespaced channels above
    // already deliver; what only it carries is a hand-sent diagnostic (the seed's `NOTIFY pgmq_message_ready,
    // 'test'`), which makes an orchestrator look at its queues. Workers do not listen to it: they would receive
    // every namespace's signals.
    const onBare = (payload: string): void => {
      if (parseSignal(payload) === null) catchUp();
    };
    const listensBare = queues.some((queue) => queueNamespace(queue) === 'orchestration');
    // The connection runs its LISTENs one at a time itself (PostgresDatabase.openListenConnection).
    const unsubscribers = await Promise.all([
      ...channels.map((channel) => listener.subscribe(channel, onPayload)),
      ...(listensBare ? [listener.subscribe(MESSAGE_READY_CHANNEL, onBare)] : []),
    ]);
    const offConnected = listener.onConnected(catchUp);
    // Messages sent before this subscription existed get no notification: read them now.
    if (listener.state.connected) catchUp();

    const subscription: Subscription = {
      queues: [...wanted],
      close: async () => {
        if (!this.subscriptions.delete(subscription)) return;
        offConnected();
        await Promise.all(unsubscribers.map((unsubscribe) => unsubscribe()));
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  async probe(): Promise<void> {
    await this.db.query('SELECT 1 FROM pgmq.meta LIMIT 1');
  }

  async health(): Promise<MessagingHealth> {
    const listenerState = this.listener?.state;
    const listener =
      listenerState === undefined
        ? undefined
        : {
            connected: listenerState.connected,
            notificationsVerified: listenerState.notificationsVerified,
            reconnects: listenerState.reconnects,
            lastEventAt: listenerState.lastEventAt,
          };
    try {
      await this.db.query('SELECT 1 FROM pgmq.meta LIMIT 1');
    } catch (error) {
      return {
        healthy: false,
        backend: 'pgmq',
        message: `queue tables unreachable: ${error instanceof Error ? error.message : String(error)}`,
        ...(listener && { listener }),
      };
    }
    if (listenerState !== undefined && listenerState.status === 'failed') {
      return {
        healthy: false,
        backend: 'pgmq',
        message: `listener failed: ${listenerState.lastError ?? 'unknown'}`,
        ...(listener && { listener }),
      };
    }
    return { healthy: true, backend: 'pgmq', message: 'operational', ...(listener && { listener }) };
  }

  /** Safe to call twice. Does not close the database, which the caller owns. */
  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
    if (this.ownsListener && this.listener !== null) {
      const listener = this.listener;
      this.listener = null;
      await listener.stop();
    }
  }

  private async ensureListener(): Promise<NotificationListener> {
    if (this.listener === null) this.listener = new NotificationListener(this.db, this.listenerOptions);
    await this.listener.start();
    return this.listener;
  }

  /** Turns the SQL functions' errors into our typed errors, by SQLSTATE. */
  private async run<R>(queue: string, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (error) {
      const state = sqlStateOf(error);
      if (state === SqlState.undefinedTable) {
        this.knownQueues.delete(queue);
        throw new MessagingError(
          'TASKER_QUEUE_NOT_FOUND',
          `queue "${queue}" does not exist: create it with ensureQueue("${queue}") first`,
          {
            details: { queue },
            cause: error,
          },
        );
      }
      if (state === SqlState.invalidParameterValue) {
        throw new ValidationError(
          'TASKER_INVALID_ARGUMENT',
          error instanceof Error ? error.message : String(error),
          {
            details: { queue },
            cause: error,
          },
        );
      }
      throw error;
    }
  }
}

function parseSignal(payload: string): QueueSignal | null {
  let parsed: ReadySignal;
  try {
    parsed = JSON.parse(payload) as ReadySignal;
  } catch {
    return null;
  }
  if (typeof parsed.queue_name !== 'string' || parsed.msg_id === undefined) return null;
  const readyAt = typeof parsed.ready_at === 'string' ? new Date(parsed.ready_at) : null;
  if (parsed.event_type === 'batch_ready') {
    return {
      kind: 'batch_ready',
      queue: parsed.queue_name,
      messageId: String(parsed.msg_id),
      count: Number(parsed.message_count ?? 1),
      readyAt,
    };
  }
  return { kind: 'message_ready', queue: parsed.queue_name, messageId: String(parsed.msg_id), readyAt };
}
