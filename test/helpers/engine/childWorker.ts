/** Starts workerProcess.ts in a child process and waits until it is claiming. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER_PROCESS_SCRIPT = fileURLToPath(new URL('./workerProcess.ts', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface ChildWorker {
  process: ChildProcess;
  workerId: string;
  pid: number;
  /** stderr so far, for failure messages. */
  stderr(): string;
  /** Resolves when the process has exited (at once if it already has). */
  exited(): Promise<void>;
  /** SIGKILL, then wait for the exit. Safe to call twice. */
  kill(): Promise<void>;
}

export async function startChildWorker(options: {
  databaseUrl: string;
  namespace: string;
  leaseSeconds: number;
  timeoutMs?: number;
}): Promise<ChildWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_PROCESS_SCRIPT], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      TASKER_TEST_NAMESPACE: options.namespace,
      TASKER_TEST_LEASE_SECONDS: String(options.leaseSeconds),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exit = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const exited = (): Promise<void> => exit;
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  };
  const ready = await new Promise<{ workerId: string; pid: number }>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      reject(new Error(`child worker not ready within ${options.timeoutMs ?? 20_000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as { workerId: string; pid: number });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `child worker exited before it was ready (code ${code}, signal ${signal}); stderr: ${stderr}`,
        ),
      );
    });
  }).catch(async (error: unknown) => {
    await kill();
    throw error;
  });
  return { process: child, workerId: ready.workerId, pid: ready.pid, stderr: () => stderr, exited, kill };
}
