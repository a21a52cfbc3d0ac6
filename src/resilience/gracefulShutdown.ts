import type { Logger } from '../observability/logger.ts';

export interface ShutdownOptions {
  logger: Logger;
  /** Stops the service: stop taking work, finish or hand back what is running, close connections. */
  stop: (signal: NodeJS.Signals) => Promise<void>;
  /** @defaultValue process.exit */
  exit?: (code: number) => void;
  signals?: readonly NodeJS.Signals[];
  /**
   * The last resort: when `stop` has not finished this long after the signal, exit 1 anyway (the service's
   * own shutdown deadline should have ended it before). @defaultValue none
   */
  hardDeadlineMs?: number;
}

/** After the deadline's cancellations, how long the stop may still take before it is left behind. */
const AFTER_DEADLINE_MS = 2_000;

/**
 * Runs `stop` and resolves when it finishes, or `deadlineMs` plus a short grace after `onDeadline` ran,
 * whichever is first: a shutdown takes as long as its deadline, whatever is still running. A stop left behind
 * goes on in the background (its failure is logged); the process is about to exit.
 */
export async function stopWithin(
  stop: () => Promise<void>,
  options: { deadlineMs: number; onDeadline: () => Promise<unknown>; logger: Logger },
): Promise<void> {
  const orderly = stop();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), options.deadlineMs);
  });
  const outcome = await Promise.race([orderly.then(() => 'done' as const), late]).finally(() =>
    clearTimeout(timer),
  );
  if (outcome === 'done') return;
  options.logger.warn(
    { shutdown_timeout_ms: options.deadlineMs },
    'shutdown deadline passed: cancelling the database statements still running',
  );
  await options
    .onDeadline()
    .catch((error: unknown) => options.logger.warn({ err: error }, 'cancelling running statements failed'));
  let grace: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    orderly.then(() => true),
    new Promise<false>((resolve) => {
      grace = setTimeout(() => resolve(false), AFTER_DEADLINE_MS);
    }),
  ]).finally(() => clearTimeout(grace));
  if (!finished) {
    orderly.catch((error: unknown) =>
      options.logger.warn({ err: error }, 'stopping failed after the deadline'),
    );
    options.logger.warn('stop still incomplete after the deadline; leaving it behind');
  }
}

/**
 * SIGTERM or SIGINT starts an orderly stop and exits 0 when it is done (1 if stopping failed). A second
 * signal while stopping exits at once with 130: an operator pressing Ctrl-C twice means it.
 */
export function exitOnShutdownSignals(options: ShutdownOptions): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      options.logger.warn({ signal }, 'second signal: exiting now without finishing in-flight work');
      exit(130);
      return;
    }
    stopping = true;
    options.logger.info({ signal }, 'shutting down: no new work; finishing or handing back in-flight steps');
    if (options.hardDeadlineMs !== undefined) {
      setTimeout(() => {
        options.logger.error(
          { signal, hard_deadline_ms: options.hardDeadlineMs },
          'shutdown did not finish in time: exiting with work in flight',
        );
        options.logger.flush();
        exit(1);
      }, options.hardDeadlineMs).unref();
    }
    options.stop(signal).then(
      () => {
        options.logger.info('stopped cleanly');
        options.logger.flush();
        exit(0);
      },
      (error: unknown) => {
        options.logger.error({ err: error }, 'shutdown failed');
        options.logger.flush();
        exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
