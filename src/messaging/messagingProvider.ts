/**
 * The one messaging interface of Tasker. PGMQ (queues inside PostgreSQL) implements it now; RabbitMQ will
 * implement the same contract. Semantics every implementation keeps:
 *  - at-least-once delivery: a received message stays invisible to other consumers until it is acked,
 *    nacked, or its visibility timeout passes; then it is delivered again (readCount grows);
 *  - `subscribe` delivers wake-up hints only. A hint may be lost or duplicated; `receive` is the truth, so
 *    consumers read on every hint and also after each `catch_up` signal.
 */

export interface QueueMessage<T = unknown> {
  /** Receipt handle for ack / nack / extendVisibility; opaque to callers. */
  id: string;
  queue: string;
  payload: T;
  /** How many times this message has been received, this delivery included. */
  readCount: number;
  enqueuedAt: Date;
  /** When the message becomes visible again unless acked (PGMQ vt). */
  visibleAt: Date;
  headers: Record<string, unknown> | null;
}

export interface SendOptions {
  /** Seconds before the message becomes visible. @defaultValue 0 */
  delaySeconds?: number;
  /** Emit a wake-up notification with the send. @defaultValue true */
  notify?: boolean;
}

export interface ReceiveOptions {
  /** Most messages to claim at once. */
  limit: number;
  /** Seconds the claimed messages stay invisible to other consumers. */
  visibilityTimeoutSeconds: number;
}

export interface NackOptions {
  /** true: deliver again (after `delaySeconds`); false: give up on it (archived, not lost). @defaultValue true */
  requeue?: boolean;
  /** @defaultValue 0 */
  delaySeconds?: number;
}

export interface QueueDepth {
  /** Messages in the queue, visible or not. */
  total: number;
  /** Messages a `receive` could take now. */
  visible: number;
  oldestAgeSeconds: number | null;
}

export type QueueSignal =
  | { kind: 'message_ready'; queue: string; messageId: string; readyAt: Date | null }
  | { kind: 'batch_ready'; queue: string; messageId: string; count: number; readyAt: Date | null }
  /** After every (re)connect of the push channel: messages may have arrived unseen, read now. */
  | { kind: 'catch_up'; queue: string };

export interface Subscription {
  readonly queues: readonly string[];
  close(): Promise<void>;
}

export interface MessagingHealth {
  healthy: boolean;
  backend: 'pgmq' | 'rabbitmq';
  message: string;
  listener?: {
    connected: boolean;
    notificationsVerified: boolean | null;
    reconnects: number;
    lastEventAt: Date | null;
  };
}

export interface MessagingProvider {
  readonly backend: 'pgmq' | 'rabbitmq';
  /** Creates the queue if missing; safe to call concurrently and repeatedly. */
  ensureQueue(queue: string): Promise<void>;
  send<T>(queue: string, payload: T, options?: SendOptions): Promise<string>;
  sendBatch<T>(queue: string, payloads: readonly T[], options?: SendOptions): Promise<string[]>;
  receive<T>(queue: string, options: ReceiveOptions): Promise<QueueMessage<T>[]>;
  /** Done with the message: it will not be delivered again. False if it was already gone. */
  ack(queue: string, id: string): Promise<boolean>;
  nack(queue: string, id: string, options?: NackOptions): Promise<void>;
  /** Lease heartbeat: keep a message invisible for `seconds` more from now. False if it is gone. */
  extendVisibility(queue: string, id: string, seconds: number): Promise<boolean>;
  queueDepth(queue: string): Promise<QueueDepth>;
  subscribe(queues: readonly string[], onSignal: (signal: QueueSignal) => void): Promise<Subscription>;
  health(): Promise<MessagingHealth>;
  /**
   * Resolves when the backend answers a trivial request, rejects otherwise: what an open circuit breaker
   * tries (with backoff) to learn that the queues are back, without waiting out its whole timeout.
   */
  probe(): Promise<void>;
  close(): Promise<void>;
}
