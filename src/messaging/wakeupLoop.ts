import { isConnectionError } from '../db/sqlState.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { MessagingProvider, QueueSignal, Subscription } from './messagingProvider.ts';

/**
 * Decides when a consumer looks at its queues: on every push signal, on a polling timer, and at the
 * `ready_at` of delayed messages it was told about. At most one drain runs at a time; a wake-up that
 * arrives during a drain makes it run once more, so nothing signalled is skipped and signals never pile up.
 */
export interface WakeupLoopOptions {
  provider: MessagingProvider;
  queues: readonly string[];
  /** Handles everything available now; wake() again when more capacity frees up. */
  drain: () => Promise<void>;
  /** LISTEN for signals. @defaultValue true */
  listen?: boolean;
  /** Poll this often as a safety net; null disables polling. @defaultValue 1000 */
  pollIntervalMs?: number | null;
  logger?: Logger;
  /** Called when a drain throws; the loop goes on. */
  onError?: (error: unknown) => void;
}

export class WakeupLoop {
  private readonly options: WakeupLoopOptions;
  private readonly logger: Logger;
  private subscription: Subscription | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;

  constructor(options: WakeupLoopOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
  }

  /** Safe to call twice. Resolves once listening (if enabled) and after a first drain was started. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.options.listen !== false) {
      this.subscription = await this.options.provider.subscribe(this.options.queues, (signal) =>
        this.onSignal(signal),
      );
    }
    const interval = this.options.pollIntervalMs === undefined ? 1_000 : this.options.pollIntervalMs;
    if (interval !== null) {
      this.pollTimer = setInterval(() => this.wake(), interval);
      this.pollTimer.unref();
    }
    this.wake();
  }

  /** Asks for a drain now (or right after the one in progress). */
  wake(): void {
    if (this.stopped) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.runDrains().finally(() => {
      this.running = null;
    });
  }

  /** Stops waking; waits for a drain in progress. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    this.pollTimer = null;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const subscription = this.subscription;
    this.subscription = null;
    await subscription?.close();
    await this.running;
  }

  private onSignal(signal: QueueSignal): void {
    if (signal.kind !== 'catch_up' && signal.readyAt !== null) {
      const wait = signal.readyAt.getTime() - Date.now();
      if (wait > 5) {
        // A delayed message (a retry's backoff): wake exactly when it becomes visible.
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.wake();
        }, wait + 2);
        timer.unref();
        this.timers.add(timer);
        return;
      }
    }
    this.wake();
  }

  private async runDrains(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.options.drain();
      } catch (error) {
        const err = error instanceof Error ? error.message : String(error);
        if (this.options.onError !== undefined) this.options.onError(error);
        // A dropped connection is retried by the next wake-up or poll: a warning, not a failure.
        else if (isConnectionError(error))
          this.logger.warn({ err }, 'queue drain interrupted by a lost database connection; retrying');
        else this.logger.error({ err }, 'queue drain failed');
      }
    } while (this.again && !this.stopped);
  }
}
