/** A pino logger writing JSON lines into memory, so tests can assert on what the engine logged. */
import { pino } from 'pino';
import type { Logger } from '../../../src/observability/logger.ts';

export interface LogEntry {
  /** pino's numeric level: 20 debug, 30 info, 40 warn, 50 error, 60 fatal. */
  level: number;
  msg?: string;
  component?: string;
  [key: string]: unknown;
}

export const LOG_LEVEL = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

export interface MemoryLogger {
  logger: Logger;
  readonly entries: LogEntry[];
  /** Entries at `level` or above. */
  atLeast(level: number): LogEntry[];
  /** Entries with this message. */
  withMessage(msg: string): LogEntry[];
}

export function createMemoryLogger(level: 'debug' | 'info' | 'warn' = 'debug'): MemoryLogger {
  const entries: LogEntry[] = [];
  const stream = {
    write(line: string): void {
      entries.push(JSON.parse(line) as LogEntry);
    },
  };
  const logger = pino({ level }, stream);
  return {
    logger,
    entries,
    atLeast: (min) => entries.filter((entry) => entry.level >= min),
    withMessage: (msg) => entries.filter((entry) => entry.msg === msg),
  };
}

/** Error-level entries: a lost race or a duplicate message must never log one. */
export function unexpectedErrors(logs: MemoryLogger): LogEntry[] {
  return logs.atLeast(LOG_LEVEL.error);
}
