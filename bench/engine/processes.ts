/**
 * The engine benchmark runs the orchestrator and the worker each in a child process of its own, so every
 * wake-up between them really crosses processes through PostgreSQL NOTIFY. Both sides of that contract
 * live here: `runChild` for the child scripts (print `ready`, stop cleanly on SIGTERM) and `startChild` /
 * `stopChild` for the bench process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LogLevel } from '../../src/observability/logger.ts';

export const READY_LINE = 'ready';

/** The repository root: `--import tsx` is resolved from the child's working directory. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ---------------------------------------------------------------------------------------------- child side

export function childEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set (the bench sets it)`);
  return value;
}

export function childEnvInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer: ${raw}`);
  return value;
}

export function childLogLevel(): LogLevel {
  const level = process.env.BENCH_CHILD_LOG_LEVEL;
  const levels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  return levels.find((candidate) => candidate === level) ?? 'warn';
}

/**
 * Runs a child's service: `start` returns its stop function. Prints `ready` once started; stops on SIGTERM
 * or SIGINT, and also when stdin closes, which happens when the bench process dies without signalling
 * (so a crashed bench leaves no orphan holding database connections). Exits 0 after a clean stop, 1 on
 * any failure.
 */
export function runChild(name: string, start: () => Promise<() => Promise<void>>): void {
  const started = start();
  let stopping = false;
  const shutdown = (why: string): void => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      process.stderr.write(`${name}: did not stop within 15 s after ${why}; exiting\n`);
      process.exit(1);
    }, 15_000).unref();
    started
      .then((stop) => stop())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`${name}: stopping after ${why} failed: ${describeError(error)}\n`);
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.resume();
  started.then(
    () => {
      if (!stopping) process.stdout.write(`${READY_LINE}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`${name}: failed to start: ${describeError(error)}\n`);
      process.exit(1);
    },
  );
}

function describeError(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

// ---------------------------------------------------------------------------------------------- bench side

export interface Child {
  name: string;
  process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
  hasExited(): boolean;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Starts `node --import tsx <script>` with `env` added to this process's environment and waits for it to
 * print `ready`. Any other stdout line is forwarded to stderr with the child's name; its stderr is shared.
 */
export async function startChild(name: string, script: URL, env: Record<string, string>): Promise<Child> {
  // BENCH_CHILD_NODE_ARGS: extra node flags for the children, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_CHILD_NODE_ARGS ?? '').split(/\s+/).filter((arg) => arg !== '');
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', fileURLToPath(script)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let exitedFlag = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const handle: Child = { name, process: child, exited, hasExited: () => exitedFlag };
  const lines = createInterface({ input: child.stdout ?? process.stdin });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not print "${READY_LINE}" within ${READY_TIMEOUT_MS / 1000} s`)),
      READY_TIMEOUT_MS,
    );
    lines.on('line', (line) => {
      if (line.trim() === READY_LINE) {
        clearTimeout(timer);
        resolve();
      } else {
        process.stderr.write(`[${name}] ${line}\n`);
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready`));
    });
  });
  try {
    await ready;
  } catch (error) {
    await stopChild(handle);
    throw error;
  }
  return handle;
}

/** SIGTERM, then SIGKILL if it has not exited within 10 s. Resolves once it has exited. Safe to call twice. */
export async function stopChild(child: Child): Promise<number | string> {
  if (child.hasExited()) return child.exited;
  child.process.kill('SIGTERM');
  const timedOut = Symbol('timed out');
  let timer: NodeJS.Timeout | undefined;
  const first = await Promise.race([
    child.exited,
    new Promise<typeof timedOut>((resolve) => {
      timer = setTimeout(() => resolve(timedOut), STOP_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (first !== timedOut) return first;
  process.stderr.write(
    `${child.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM: killing it\n`,
  );
  child.process.kill('SIGKILL');
  return child.exited;
}
