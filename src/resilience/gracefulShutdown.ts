import type { Logger } from '../observability/logger.ts';

export interface ShutdownOptions {
  logger: Logger;
  /** Stops the service: stop taking work, finish or hand back what is running, close connections. */
  stop: (signal: NodeJS.Signals) => Promise<void>;
  /** @defaultValue process.exit */
  exit?: (code: number) => void;
  signals?: readonly NodeJS.Signals[];
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
