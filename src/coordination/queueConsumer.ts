import { isTransientDatabaseError } from '../db/sqlState.ts';
import type { MessagingProvider, QueueSignal, Subscription } from '../messaging/messagingProvider.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { ConsumerMetrics } from '../observability/metrics.ts';
import type { CoordinationMonitor } from './coordinationMonitor.ts';
import { errorBackoffDelay } from './coordinationSettings.ts';
import type { ExecutorPool } from './executorPool.ts';

/** What one drain (one look at the queues) found and handled. */
export interface DrainReport {
  /** Messages read (or steps claimed). */
  found: number;
  /** Of those, handled without error. */
  processed: number;
  /** The read came back full: more may be waiting. */
  full: boolean;
}

/** Why a drain runs: a notification (or catch-up after a reconnect), a poll, or something else. */
export type DrainTrigger = 'event' | 'poll' | 'backlog' | 'retry' | 'start' | 'wake';

export interface QueueConsumerOptions {
  /** Names the consumer in logs and metrics (a queue name, or the worker's namespace set). */
  name: string;
  provider: MessagingProvider;
  /** Queues whose notifications wake this consumer. */
  queues: readonly string[];
  /** One look at the queues. The trigger says why, e.g. to cap a poll-driven read at batch_size. */
  drain: (trigger: DrainTrigger) => Promise<DrainReport>;
  /** The role's mode: whether to LISTEN and poll, and whether Hybrid is in fallback. */
  monitor: CoordinationMonitor;
  /** How often to poll when the mode polls. */
  pollIntervalMs: number;
  /** Overrides the mode for this consumer: LISTEN or not. @defaultValue the mode's */
  listen?: boolean;
  /** Overrides the mode for this consumer: poll or not. @defaultValue the mode's */
  poll?: boolean;
  /** Drains allowed at once (orchestration stages); one when absent. */
  pool?: ExecutorPool;
  logger?: Logger;
  metrics?: ConsumerMetrics;
}

/**
 * Decides when a consumer looks at its queues, per deployment mode:
 *  - a notification (EventDrivenOnly, Hybrid) wakes it at once; after every listener (re)connect a catch-up
 *    signal makes it read whatever arrived unseen;
 *  - a poll timer (PollingOnly, Hybrid) wakes it every pollIntervalMs. In Hybrid, while events work, a poll
 *    right after a drain is skipped (the events are evidently arriving); in fallback every poll runs;
 *  - a failed drain is retried after the mode's error backoff (base × multiplier^n, capped), and polls slow
 *    down to that backoff while failures last;
 *  - a message with a future visibility (a retry's backoff) wakes it when it becomes visible.
 * A wake-up during a drain makes it run once more, so nothing signalled is skipped; a drain that read a full
 * batch runs again at once and, with an executor pool, starts a parallel drain up to the pool's limit.
 */
export class QueueConsumer {
  private readonly options: QueueConsumerOptions;
  private readonly logger: Logger;
  private subscription: Subscription | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly loops = new Set<Promise<void>>();
  private again: DrainTrigger | null = null;
  private stopped = true;
  private failures = 0;
  private lastDrainEndedAt = 0;
  private offFallback: (() => void) | null = null;

  constructor(options: QueueConsumerOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
  }

  /** Drains running now. */
  get active(): number {
    return this.loops.size;
  }

  /** Failed drains in a row (0 when the last one succeeded). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Safe to call twice. Resolves once listening (if the mode listens) and after a first drain was started. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    const { settings } = this.options.monitor;
    if (this.options.listen ?? settings.listen) {
      this.subscription = await this.options.provider.subscribe(this.options.queues, (signal) =>
        this.onSignal(signal),
      );
    }
    if (this.options.poll ?? settings.poll) this.schedulePoll(this.options.pollIntervalMs);
    this.offFallback = this.options.monitor.onFallback(() => this.wake('poll'));
    this.wake('start');
  }

  /** Asks for a drain now (or right after the one in progress). */
  wake(trigger: DrainTrigger = 'wake'): void {
    if (this.stopped) return;
    if (this.loops.size > 0) {
      this.again ??= trigger;
      return;
    }
    this.spawn(trigger);
  }

  /** Stops waking; waits for drains in progress. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.pollTimer = null;
    this.retryTimer = null;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.offFallback?.();
    this.offFallback = null;
    const subscription = this.subscription;
    this.subscription = null;
    await subscription?.close();
    await Promise.all([...this.loops]);
  }

  private schedulePoll(delayMs: number): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      this.pollTick();
      const backoff = errorBackoffDelay(this.options.monitor.settings.errorBackoff, this.failures);
      this.schedulePoll(Math.max(this.options.pollIntervalMs, backoff));
    }, delayMs);
    this.pollTimer.unref();
  }

  private pollTick(): void {
    if (this.stopped) return;
    const { monitor, pollIntervalMs } = this.options;
    // Hybrid with working events: a drain just ran, so the queue was looked at; the safety net can rest.
    const primary = monitor.pollingPrimary || this.options.listen === false;
    if (!primary && Date.now() - this.lastDrainEndedAt < pollIntervalMs) return;
    if (this.loops.size > 0) {
      this.again ??= 'poll';
      return;
    }
    this.spawn('poll');
  }

  private onSignal(signal: QueueSignal): void {
    if (signal.kind !== 'catch_up' && signal.readyAt !== null) {
      const wait = signal.readyAt.getTime() - Date.now();
      if (wait > 5) {
        // A delayed message (a retry's backoff): wake exactly when it becomes visible.
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.wake('event');
        }, wait + 2);
        timer.unref();
        this.timers.add(timer);
        return;
      }
    }
    this.wake('event');
  }

  private spawn(trigger: DrainTrigger): void {
    const loop = this.run(trigger).finally(() => {
      this.loops.delete(loop);
      if (this.options.pool !== undefined) this.options.pool.active = this.loops.size;
    });
    this.loops.add(loop);
    if (this.options.pool !== undefined) this.options.pool.active = this.loops.size;
  }

  /** Drains until nothing more is signalled and the last read was not full. */
  private async run(first: DrainTrigger): Promise<void> {
    let trigger: DrainTrigger | null = first;
    while (trigger !== null && !this.stopped) {
      this.again = null;
      const full = await this.cycle(trigger);
      // A failed cycle is retried by its backoff timer, not at once.
      if (full === null) return;
      if (full && !this.stopped) {
        const limit = this.options.pool?.limit ?? 1;
        // More is waiting: a parallel drain when the pool allows, and this one goes on.
        if (this.loops.size < limit) this.spawn('backlog');
      }
      trigger = full ? 'backlog' : this.again;
    }
  }

  /**
   * One cycle: a drain, repeated while reads come back full — for a poll, up to max_messages_per_poll.
   * Returns whether the last read was full (more waits), or null when the drain failed.
   */
  private async cycle(trigger: DrainTrigger): Promise<boolean | null> {
    const { monitor, metrics, name } = this.options;
    const started = performance.now();
    let found = 0;
    let processed = 0;
    let full: boolean;
    const cap = trigger === 'poll' ? monitor.settings.maxMessagesPerPoll : 1;
    try {
      do {
        const report = await this.options.drain(trigger);
        found += report.found;
        processed += report.processed;
        full = report.full;
      } while (trigger === 'poll' && full && found < cap && !this.stopped);
      this.failures = 0;
    } catch (error) {
      this.failures += 1;
      if (trigger === 'poll') metrics?.pollError(name);
      const err = error instanceof Error ? error.message : String(error);
      const retryInMs = errorBackoffDelay(monitor.settings.errorBackoff, this.failures);
      // A dropped connection is retried after the backoff: a warning, not a failure.
      if (isTransientDatabaseError(error)) {
        this.logger.warn(
          { err, consumer: name, retryInMs },
          'queue drain interrupted (database connection lost or pool exhausted); retrying',
        );
      } else {
        this.logger.error({ err, consumer: name, retryInMs }, 'queue drain failed; retrying');
      }
      this.scheduleRetry(retryInMs);
      return null;
    } finally {
      this.lastDrainEndedAt = Date.now();
    }
    const seconds = (performance.now() - started) / 1000;
    if (trigger === 'poll') metrics?.pollCycle(name, seconds, found, processed);
    else if (trigger === 'event' && found > 0) metrics?.eventProcessed(seconds);
    return full;
  }

  private scheduleRetry(delayMs: number): void {
    if (this.stopped || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.wake('retry');
    }, delayMs);
    this.retryTimer.unref();
  }
}
