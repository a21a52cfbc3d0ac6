import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';
import { redactSecrets } from '../domain/secretRedaction.ts';

export type Logger = PinoLogger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Structured JSON logs on stderr. Any URL with a password that reaches a log line is redacted at
 * serialization time, so a careless `{ url }` field cannot leak a secret.
 */
export function createLogger(options: { level?: LogLevel; name?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'tasker',
      level: options.level ?? 'info',
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        streamWrite: (line) => redactSecrets(line),
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
