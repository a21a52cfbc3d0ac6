import type { Logger } from '../observability/logger.ts';
import { errorLabel } from './circuitBreaker.ts';
import type { CircuitBreaker, CircuitTransition } from './circuitBreaker.ts';

export interface BreakerProberOptions {
  /** A trivial request to the dependency (`SELECT 1`): resolves when it answers. */
  probe: () => Promise<void>;
  /** The first probe after the breaker opens. @defaultValue 1000 */
  initialDelayMs?: number;
  /**
   * The longest wait between probes, so recovery is noticed at most this late; the breaker's `timeout_seconds`
   * bounds it too. @defaultValue 4000
   */
  maxDelayMs?: number;
  /** A probe that has not answered by then failed. @defaultValue 5000 */
  probeTimeoutMs?: number;
  logger: Logger;
}

/**
 * Finds out when an open breaker's dependency is back, so recovery takes about as long as the outage rather
 * than the breaker's whole `timeout_seconds`: while the breaker is open, probes the dependency with a capped
 * exponential backoff from about a second, and lets trial calls through (half-open) on the first answer. The
 * breaker's own timeout stays the upper bound: without a prober, or when every probe fails, it half-opens then.
 *
 * One probe at a time; the schedule is recorded on the breaker, so Retry-After says when the next one runs.
 */
export class BreakerProber {
  readonly #breaker: CircuitBreaker;
  readonly #probe: () => Promise<void>;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #probeTimeoutMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #delayMs: number;
  #probing = false;
  #stopped = false;

  constructor(breaker: CircuitBreaker, options: BreakerProberOptions) {
    this.#breaker = breaker;
    this.#probe = options.probe;
    this.#initialDelayMs = options.initialDelayMs ?? 1_000;
    this.#maxDelayMs = Math.min(options.maxDelayMs ?? 4_000, breaker.timeoutSeconds * 1000);
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 5_000;
    this.#logger = options.logger;
    this.#delayMs = this.#initialDelayMs;
  }

  /** To be called on every transition of the breaker: starts probing when it opens, stops when it leaves open. */
  onTransition(transition: CircuitTransition): void {
    if (this.#stopped) return;
    if (transition.to === 'open') {
      // A trial that failed re-opens the breaker: the dependency flaps, so do not start again from 1 s.
      this.#delayMs = transition.reason === 'trial_failed' ? this.#delayMs : this.#initialDelayMs;
      this.#schedule();
    } else {
      this.#cancel();
    }
  }

  /** Stops probing (service shutdown). */
  stop(): void {
    this.#stopped = true;
    this.#cancel();
  }

  #schedule(): void {
    this.#cancel();
    const delay = Math.min(this.#delayMs, this.#maxDelayMs);
    this.#breaker.scheduleProbe(Date.now() + delay);
    this.#timer = setTimeout(() => void this.#run(), delay);
    this.#timer.unref();
  }

  #cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped || this.#probing || this.#breaker.state !== 'open') return;
    this.#probing = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#probe(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`probe timed out after ${this.#probeTimeoutMs} ms`)),
            this.#probeTimeoutMs,
          );
        }),
      ]);
      this.#delayMs = this.#initialDelayMs;
      this.#logger.info(
        { breaker: this.#breaker.name },
        'circuit breaker probe answered: letting trial calls through',
      );
      this.#breaker.probeSucceeded();
    } catch (error) {
      this.#delayMs = Math.min(this.#delayMs * 2, this.#maxDelayMs);
      this.#logger.debug(
        { breaker: this.#breaker.name, error: errorLabel(error), next_probe_ms: this.#delayMs },
        'circuit breaker probe failed',
      );
      if (!this.#stopped && this.#breaker.state === 'open') this.#schedule();
    } finally {
      clearTimeout(timer);
      this.#probing = false;
    }
  }
}
