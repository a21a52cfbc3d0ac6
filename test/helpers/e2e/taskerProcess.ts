/**
 * Real `tasker` service processes for end-to-end tests: `node bin/tasker.js orchestration|worker`, each its
 * own OS process with its own pool and LISTEN connection, talking to the others only through PostgreSQL.
 * Services listen on port 0; the URL is read from their "started" log line. Every log line is kept, so
 * tests can assert that nothing was logged at error level.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/tasker.js', import.meta.url));
const EXAMPLE_HANDLERS = fileURLToPath(new URL('../../../examples/handlers/index.ts', import.meta.url));
const EXAMPLE_TEMPLATES = fileURLToPath(new URL('../../../examples/templates/', import.meta.url));

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface TaskerProcess {
  readonly role: 'orchestration' | 'worker';
  readonly child: ChildProcess;
  readonly pid: number;
  /** The HTTP URL the service reported (REST API or worker health). */
  readonly url: string;
  /** host:port of its gRPC health server. */
  readonly grpcAddress: string | undefined;
  readonly logs: LogLine[];
  /** Raw stderr text that was not a JSON log line (should stay empty). */
  readonly otherOutput: string[];
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export interface StartOptions {
  databaseUrl: string;
  env?: Record<string, string>;
  args?: string[];
  /**
   * A service starts in about 3 s on an idle 2-core machine (tsx compiles the TypeScript as it loads); with
   * four test files running clusters beside it, 30 s has not always been enough.
   * @defaultValue 60000
   */
  startTimeoutMs?: number;
}

export interface WorkerStartOptions extends StartOptions {
  /** @defaultValue the example handlers */
  handlers?: string;
  /** @defaultValue the example templates */
  templates?: string;
}

/**
 * Children still running when this test process exits (a failed beforeAll that never stopped them, a
 * timeout) are killed with it: a leftover service keeps polling and takes CPU from every later test and
 * benchmark on the machine.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function startTasker(role: 'orchestration' | 'worker', options: StartOptions): Promise<TaskerProcess> {
  const child = spawn(
    process.execPath,
    [BIN, role, '--bind', '127.0.0.1:0', '--grpc-bind', '127.0.0.1:0', ...(options.args ?? [])],
    {
      env: {
        ...process.env,
        TASKER_ENV: 'test',
        LOG_LEVEL: 'info',
        DATABASE_URL: options.databaseUrl,
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: LogLine[] = [];
  const otherOutput: string[] = [];
  running.add(child);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  let buffered = '';
  let onLine: (line: LogLine) => void = () => undefined;
  const consume = (chunk: Buffer): void => {
    buffered += chunk.toString('utf8');
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (text.trim() === '') continue;
      try {
        const line = JSON.parse(text) as LogLine;
        logs.push(line);
        onLine(line);
      } catch {
        otherOutput.push(text);
      }
    }
  };
  child.stderr.on('data', consume);
  child.stdout.on('data', (chunk: Buffer) => otherOutput.push(chunk.toString('utf8')));

  return new Promise((resolve, reject) => {
    const timeoutMs = options.startTimeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${role} did not start within ${timeoutMs} ms: ${otherOutput.join('')} ${JSON.stringify(logs.slice(-5))}`,
        ),
      );
    }, timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${role} exited (${code}) before it started: ${otherOutput.join('')} ${JSON.stringify(logs.slice(-5))}`,
        ),
      );
    });
    onLine = (line) => {
      if (line.msg === `${role} service started` && typeof line.url === 'string') {
        clearTimeout(timer);
        onLine = () => undefined;
        resolve({
          role,
          child,
          pid: child.pid ?? -1,
          url: line.url,
          grpcAddress: typeof line.grpc === 'string' ? line.grpc : undefined,
          logs,
          otherOutput,
          exited,
          kill: (signal = 'SIGTERM') => {
            child.kill(signal);
          },
        });
      }
    };
  });
}

export function startOrchestrationProcess(options: StartOptions): Promise<TaskerProcess> {
  return startTasker('orchestration', options);
}

export function startWorkerProcess(options: WorkerStartOptions): Promise<TaskerProcess> {
  return startTasker('worker', {
    ...options,
    args: [
      '--handlers',
      options.handlers ?? EXAMPLE_HANDLERS,
      '--templates',
      options.templates ?? EXAMPLE_TEMPLATES,
      ...(options.args ?? []),
    ],
  });
}

/** Stops a process with SIGTERM and waits for it; SIGKILL after `timeoutMs`. */
export async function stopProcess(proc: TaskerProcess, timeoutMs = 15_000): Promise<number | string> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.exited;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  try {
    return await proc.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Log lines at error or fatal level (pino levels are labels here). */
export function errorLogs(proc: TaskerProcess): LogLine[] {
  return proc.logs.filter((line) => line.level === 'error' || line.level === 'fatal');
}
