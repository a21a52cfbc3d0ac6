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
} from '../messaging/messagingProvider.ts';
import type { NotificationListener } from '../messaging/pgmq/notificationListener.ts';
import type { CircuitBreaker } from './circuitBreaker.ts';

/**
 * A MessagingProvider whose queue operations go through a circuit breaker: while it is open, send, receive,
 * ack and the rest fail at once with CircuitError (TASKER_CIRCUIT_OPEN). `subscribe` is not guarded (wake-up
 * hints come over a connection with its own reconnect backoff), nor are `health` (it must answer while the
 * queue is down) and `close`.
 */
export class CircuitBreakerMessagingProvider implements MessagingProvider {
  readonly #inner: MessagingProvider;
  readonly breaker: CircuitBreaker;

  constructor(inner: MessagingProvider, breaker: CircuitBreaker) {
    this.#inner = inner;
    this.breaker = breaker;
  }

  get backend(): MessagingProvider['backend'] {
    return this.#inner.backend;
  }

  /** The inner provider's LISTEN connection when it has one (PGMQ), for health and metrics. */
  get notificationListener(): NotificationListener | null {
    return (
      (this.#inner as { notificationListener?: NotificationListener | null }).notificationListener ?? null
    );
  }

  ensureQueue(queue: string): Promise<void> {
    return this.breaker.execute(() => this.#inner.ensureQueue(queue));
  }

  send<T>(queue: string, payload: T, options?: SendOptions): Promise<string> {
    return this.breaker.execute(() => this.#inner.send(queue, payload, options));
  }

  sendBatch<T>(queue: string, payloads: readonly T[], options?: SendOptions): Promise<string[]> {
    return this.breaker.execute(() => this.#inner.sendBatch(queue, payloads, options));
  }

  receive<T>(queue: string, options: ReceiveOptions): Promise<QueueMessage<T>[]> {
    return this.breaker.execute(() => this.#inner.receive<T>(queue, options));
  }

  ack(queue: string, id: string): Promise<boolean> {
    return this.breaker.execute(() => this.#inner.ack(queue, id));
  }

  nack(queue: string, id: string, options?: NackOptions): Promise<void> {
    return this.breaker.execute(() => this.#inner.nack(queue, id, options));
  }

  extendVisibility(queue: string, id: string, seconds: number): Promise<boolean> {
    return this.breaker.execute(() => this.#inner.extendVisibility(queue, id, seconds));
  }

  queueDepth(queue: string): Promise<QueueDepth> {
    return this.breaker.execute(() => this.#inner.queueDepth(queue));
  }

  subscribe(queues: readonly string[], onSignal: (signal: QueueSignal) => void): Promise<Subscription> {
    return this.#inner.subscribe(queues, onSignal);
  }

  /** Not guarded: the breaker's own prober calls it while the breaker is open. */
  probe(): Promise<void> {
    return this.#inner.probe();
  }

  health(): Promise<MessagingHealth> {
    return this.#inner.health();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
