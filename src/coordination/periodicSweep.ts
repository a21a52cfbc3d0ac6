import { isTransientDatabaseError } from '../db/sqlState.ts';
import type { Logger } from '../observability/logger.ts';

/** Runs spread over up to 10% of the interval (at most 30 s), so orchestrators started together do not sweep together. */
const JITTER_FRACTION = 0.1;
const MAX_JITTER_MS = 30_000;

export interface PeriodicSweepOptions<T> {
  /** Names the sweep in its log lines, e.g. `staleness detection`. */
  name: string;
  /** Time between sweeps; the first comes one interval (plus jitter) after start(). */
  intervalMs: number;
  /**
   * One sweep. `stopped` aborts when stop() is called: a sweep made of several batches ends after the current
   * one instead of holding up the shutdown.
   */
  sweep: (stopped: AbortSignal) => Promise<T>;
  logger: Logger;
}

/**
 * A database sweep every orchestrator runs on a timer, with no leader (the staleness detector, retention): the
 * SQL keeps concurrent sweeps apart with row locks. A failed sweep is logged and the next one comes at the next
 * interval: a lost connection or a pool busy past its timeout as a warning, anything else (a broken function, a
 * permission) as an error, since it needs an operator. The timer never keeps a process alive on its own.
 */
export class PeriodicSweep<T> {
  readonly #options: PeriodicSweepOptions<T>;
  #started = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<T> | undefined;
  #stopped = new AbortController();

  constructor(options: PeriodicSweepOptions<T>) {
    if (!(options.intervalMs > 0)) throw new RangeError(`${options.name}: intervalMs must be positive`);
    this.#options = options;
  }

  /** Schedules sweeps every interval. Safe to call twice. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (this.#stopped.signal.aborted) this.#stopped = new AbortController();
    this.#schedule();
  }

  /** No further sweeps; waits for a sweep in progress to finish (it is told through its signal). Safe to call twice. */
  async stop(): Promise<void> {
    this.#started = false;
    this.#stopped.abort();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /**
   * One sweep now. A call while a sweep is running joins it instead of starting another.
   * @throws whatever the sweep throws (the scheduled sweeps log it and try again next interval)
   */
  runOnce(): Promise<T> {
    if (this.#running !== undefined) return this.#running;
    const run = this.#options.sweep(this.#stopped.signal).finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  #schedule(): void {
    if (!this.#started) return;
    const { intervalMs } = this.#options;
    const jitter = Math.random() * Math.min(intervalMs * JITTER_FRACTION, MAX_JITTER_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, intervalMs + jitter);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const { name, logger } = this.#options;
    try {
      await this.runOnce();
    } catch (error) {
      if (isTransientDatabaseError(error)) {
        logger.warn(
          { err: error },
          `${name} interrupted (database connection lost or pool exhausted); it runs again at the next interval`,
        );
      } else {
        logger.error({ err: error }, `${name} failed; it runs again at the next interval`);
      }
    } finally {
      this.#schedule();
    }
  }
}
