/**
 * The soak's cluster: real `tasker orchestration` and `tasker worker` processes of mixed deployment modes on
 * one database, each member replaceable (SIGKILL, then a new process in the same mode). Killed processes are
 * kept, so their log lines still count at the end.
 */
import { TaskerClient } from '../../src/client/taskerClient.ts';
import type { DeploymentMode } from '../../src/config/schema.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../../test/helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../../test/helpers/e2e/taskerProcess.ts';

type Role = 'orchestration' | 'worker';

export interface Member {
  readonly role: Role;
  readonly mode: DeploymentMode;
  /** The running process; replaced by restart(). */
  proc: TaskerProcess;
  /** A client of this orchestrator's REST API (orchestrators only); replaced with the process. */
  client: TaskerClient | undefined;
}

export interface LogCounts {
  errors: number;
  errorSamples: string[];
  warnings: number;
  /** [role: message, count], most frequent first. */
  commonWarnings: Array<[string, number]>;
}

export const ORCHESTRATOR_MODES: readonly DeploymentMode[] = ['Hybrid', 'EventDrivenOnly'];
export const WORKER_MODES: readonly DeploymentMode[] = ['Hybrid', 'EventDrivenOnly', 'PollingOnly'];

/** How long a killed process may take to be reaped, and a replacement to log "service started". */
const EXIT_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 60_000;
/** One /health/ready request's bound. */
const READY_TIMEOUT_MS = 2_000;

export class SoakCluster {
  readonly members: Member[] = [];
  /** Processes killed or stopped: their logs count in the report. */
  readonly retired: TaskerProcess[] = [];

  constructor(
    private readonly databaseUrl: string,
    private readonly env: Record<string, string>,
  ) {}

  async start(): Promise<void> {
    const wanted: Array<[Role, DeploymentMode]> = [
      ...ORCHESTRATOR_MODES.map((mode): [Role, DeploymentMode] => ['orchestration', mode]),
      ...WORKER_MODES.map((mode): [Role, DeploymentMode] => ['worker', mode]),
    ];
    // One at a time: five tsx start-ups at once on 2 cores take longer than one after another.
    for (const [role, mode] of wanted) {
      const proc = await this.spawn(role, mode);
      this.members.push({ role, mode, proc, client: clientFor(role, proc) });
    }
  }

  orchestrators(): Member[] {
    return this.members.filter((m) => m.role === 'orchestration');
  }

  workers(): Member[] {
    return this.members.filter((m) => m.role === 'worker');
  }

  /** SIGKILL, wait until it is gone, start a new process of the same role and mode. */
  async killAndRestart(member: Member): Promise<void> {
    const old = member.proc;
    old.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        old.exited,
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${member.role} ${old.pid} not gone ${EXIT_TIMEOUT_MS} ms after SIGKILL`)),
            EXIT_TIMEOUT_MS,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    this.retired.push(old);
    member.client?.close();
    member.client = undefined;
    member.proc = await this.spawn(member.role, member.mode);
    member.client = clientFor(member.role, member.proc);
  }

  /** The members whose /health/ready does not answer 200 now (empty: all ready). */
  async notReady(): Promise<string[]> {
    const answers = await Promise.all(
      this.members.map((m) =>
        fetch(`${m.proc.url}/health/ready`, { signal: AbortSignal.timeout(READY_TIMEOUT_MS) }).then(
          (r) => {
            void r.body?.cancel();
            return r.status === 200;
          },
          () => false,
        ),
      ),
    );
    return this.members.filter((_, i) => answers[i] !== true).map(label);
  }

  /** SIGTERM to every member (SIGKILL after 15 s); the exit codes, by member. */
  async stop(): Promise<Array<{ member: string; code: number | string }>> {
    for (const m of this.members) m.client?.close();
    const codes = await Promise.all(
      this.members.map(async (m) => ({ member: label(m), code: await stopProcess(m.proc) })),
    );
    this.retired.push(...this.members.map((m) => m.proc));
    this.members.length = 0;
    return codes;
  }

  /** For a signal handler: SIGKILL every running member at once. */
  killAll(): void {
    for (const m of this.members) m.proc.kill('SIGKILL');
  }

  /** Log lines at error/fatal and at warn level of every process this cluster ran, with the commonest messages. */
  logCounts(): LogCounts {
    const all = [...this.retired, ...this.members.map((m) => m.proc)];
    const errors = all.flatMap((p) => errorLogs(p).map((line) => `${p.role} ${p.pid}: ${line.msg}`));
    const warnings = new Map<string, number>();
    for (const p of all) {
      for (const line of p.logs) {
        if (line.level !== 'warn') continue;
        const key = `${p.role}: ${line.msg}`;
        warnings.set(key, (warnings.get(key) ?? 0) + 1);
      }
    }
    return {
      errors: errors.length,
      errorSamples: errors.slice(0, 10),
      warnings: [...warnings.values()].reduce((a, b) => a + b, 0),
      commonWarnings: [...warnings.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8),
    };
  }

  private spawn(role: Role, mode: DeploymentMode): Promise<TaskerProcess> {
    const options = {
      databaseUrl: this.databaseUrl,
      env: { ...this.env, TASKER_DEPLOYMENT_MODE: mode },
      startTimeoutMs: START_TIMEOUT_MS,
    };
    return role === 'orchestration' ? startOrchestrationProcess(options) : startWorkerProcess(options);
  }
}

export function label(member: Member): string {
  return `${member.role === 'orchestration' ? 'orchestrator' : 'worker'} ${member.mode}`;
}

function clientFor(role: Role, proc: TaskerProcess): TaskerClient | undefined {
  // Per attempt 10 s; the load generator bounds a whole creation and moves to the other orchestrator.
  return role === 'orchestration'
    ? new TaskerClient(proc.url, { timeoutMs: 10_000, retry: { maxElapsedMs: 10_000 } })
    : undefined;
}
