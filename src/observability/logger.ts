import { pino } from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { redactSecrets } from '../domain/secretRedaction.ts';
import { prettyLogLine } from './prettyLogLine.ts';

export type Logger = PinoLogger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** `json`: one JSON object per line, for log collectors. `pretty`: one human-readable line per event. */
export type LogFormat = 'json' | 'pretty';

/**
 * `auto` (the default of `[telemetry] log_format`) is pretty where a person is reading: the development
 * environment with stderr on a terminal. Anywhere else (production, test, stderr piped to a collector or a
 * file) a machine reads the log, and JSON is what it parses.
 */
export function resolveLogFormat(
  configured: LogFormat | 'auto',
  environment: string,
  stderrIsTerminal: boolean,
): LogFormat {
  if (configured !== 'auto') return configured;
  return environment === 'development' && stderrIsTerminal ? 'pretty' : 'json';
}

/**
 * Logs on stderr, JSON or pretty. Any URL with a password that reaches a log line is redacted at
 * serialization time, so a careless `{ url }` field cannot leak a secret.
 *
 * Both formats write through pino's own destination, which stops writing when the reader of stderr is gone
 * (EPIPE): a service whose log pipe closed goes on running and still stops on SIGTERM/SIGINT rather than
 * dying or hanging on a write.
 */
export function createLogger(options: { level?: LogLevel; name?: string; format?: LogFormat } = {}): Logger {
  const stderr = pino.destination({ fd: 2, sync: false });
  return pino(
    {
      name: options.name ?? 'tasker',
      level: options.level ?? 'info',
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        streamWrite: (line) => redactSecrets(line),
      },
    },
    options.format === 'pretty' ? prettyDestination(stderr) : stderr,
  );
}

/**
 * Reformats each JSON line before it reaches `stderr`. `stderr.write` is looked up on every call: after
 * EPIPE pino's destination replaces it with a no-op, and this must not keep the original.
 */
function prettyDestination(stderr: ReturnType<typeof pino.destination>): DestinationStream {
  return {
    write: (line: string) => stderr.write(prettyLogLine(line)),
    flush: (callback?: (error?: Error) => void) => stderr.flush(callback),
    flushSync: () => stderr.flushSync(),
  } as DestinationStream;
}

export const silentLogger: Logger = pino({ level: 'silent' });
