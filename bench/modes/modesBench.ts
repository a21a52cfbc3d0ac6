/**
 * Deployment-mode benchmark: the same workflows through real `tasker orchestration` and `tasker worker`
 * processes in each deployment mode — EventDrivenOnly, Hybrid, PollingOnly at its default intervals and at
 * 100 ms, and a mixed cluster (EventDrivenOnly + PollingOnly orchestrators, Hybrid + PollingOnly workers).
 * Tasks are created in this process (createTask, one connection) and their end is seen by the task-finished
 * NOTIFY, as in the engine benchmark, so the figures are the engine's and not the API's. Prints figures only; nothing passes or fails. bench/README.md explains each column.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDatabaseExists } from '../../src/db/createDatabase.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { createTask } from '../../src/orchestration/taskInitializer.ts';
import { TemplateCache } from '../../src/orchestration/templateCache.ts';
import {
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../../test/helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../../test/helpers/e2e/taskerProcess.ts';
import {
  describeMachine,
  distribution,
  envNumber,
  fixed,
  formatTable,
  printMachineHeader,
  progress,
  resetState,
} from '../benchSupport.ts';
import type { Distribution } from '../benchSupport.ts';
import { BENCH_TEMPLATE_FILES, DIAMOND, LINEAR, taskRequest } from '../engine/benchTemplates.ts';
import { TaskFinishedFeed } from '../engine/taskFinishedFeed.ts';
import type { BenchWorkflow } from '../engine/benchTemplates.ts';

const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/tasker_bench_modes';
const HANDLERS = fileURLToPath(new URL('../rest/benchHandlers.ts', import.meta.url));

const config = {
  databaseUrl: process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL,
  linearRuns: Math.round(envNumber('BENCH_MODES_LINEAR_RUNS', 100)),
  /** PollingOnly at its default intervals waits about a second per run: fewer runs. */
  slowLinearRuns: Math.round(envNumber('BENCH_MODES_SLOW_LINEAR_RUNS', 15)),
  diamonds: Math.round(envNumber('BENCH_MODES_DIAMONDS', 300)),
};

/** Concurrent createTask() calls for the diamonds, as in the engine benchmark. */
const CREATORS = 8;

type Mode = 'EventDrivenOnly' | 'Hybrid' | 'PollingOnly';

interface Scenario {
  label: string;
  orchestrators: Mode[];
  workers: Mode[];
  /** TOML on top of the production environment. */
  toml: string;
  slow: boolean;
  note: string;
}

const POLL_100MS = `
[orchestration.polling]
task_request_poll_interval_ms = 100
step_result_poll_interval_ms = 100
finalization_poll_interval_ms = 100
[worker.polling]
polling_interval_ms = 100
`;

const SCENARIOS: Scenario[] = [
  {
    label: 'EventDrivenOnly',
    orchestrators: ['EventDrivenOnly'],
    workers: ['EventDrivenOnly'],
    toml: '',
    slow: false,
    note: 'LISTEN/NOTIFY only',
  },
  {
    label: 'Hybrid',
    orchestrators: ['Hybrid'],
    workers: ['Hybrid'],
    toml: '',
    slow: false,
    note: 'LISTEN/NOTIFY, safety-net poll 1 s',
  },
  {
    label: 'PollingOnly (defaults)',
    orchestrators: ['PollingOnly'],
    workers: ['PollingOnly'],
    toml: '',
    slow: true,
    note: 'worker polls every 1000 ms',
  },
  {
    label: 'PollingOnly (100 ms)',
    orchestrators: ['PollingOnly'],
    workers: ['PollingOnly'],
    toml: POLL_100MS,
    slow: false,
    note: 'every queue polled every 100 ms',
  },
  {
    label: 'mixed cluster',
    orchestrators: ['EventDrivenOnly', 'PollingOnly'],
    workers: ['Hybrid', 'PollingOnly'],
    toml: '',
    slow: false,
    note: 'ED + PO orchestrators, Hybrid + PO workers',
  },
];

interface ScenarioResult {
  scenario: Scenario;
  linearRuns: number;
  linear: Distribution;
  linearFailed: number;
  diamonds: { tasks: number; seconds: number; tasksPerSecond: number; latency: Distribution; failed: number };
}

interface Rig {
  creator: PostgresDatabase;
  poller: PostgresDatabase;
  feed: TaskFinishedFeed;
  templates: TemplateCache;
}

async function linear(rig: Rig, runs: number): Promise<{ ms: Distribution; failed: number }> {
  const samples: number[] = [];
  let failed = 0;
  for (let i = 0; i < runs + 5; i++) {
    const started = performance.now();
    const task = await createTask(rig.creator, taskRequest(LINEAR, i), { templates: rig.templates });
    const state = await rig.feed.wait(task.taskUuid, 30_000);
    if (i < 5) continue;
    samples.push(performance.now() - started);
    if (state !== 'complete') failed += 1;
  }
  return { ms: distribution(samples), failed };
}

async function bulk(rig: Rig, workflow: BenchWorkflow, count: number): Promise<ScenarioResult['diamonds']> {
  const started = performance.now();
  // As in the engine benchmark: CREATORS createTask() calls in flight at once.
  let next = 0;
  await Promise.all(
    Array.from({ length: CREATORS }, async () => {
      while (next < count) {
        const seq = next++;
        await createTask(rig.creator, taskRequest(workflow, seq), { templates: rig.templates });
      }
    }),
  );
  const deadline = performance.now() + 120_000;
  for (;;) {
    const { rows } = await rig.poller.query<{ active: string }>(
      `SELECT count(*) AS active FROM tasker.tasks
       WHERE current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')`,
    );
    if (Number(rows[0]?.active ?? 0) === 0) break;
    if (performance.now() > deadline) throw new Error(`${rows[0]?.active} diamonds unfinished after 120 s`);
    await sleep(5);
  }
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await rig.poller.query<{ ms: number; state: string }>(
    `SELECT (extract(epoch FROM c.created_at - t.created_at) * 1000)::float8 AS ms, t.current_state AS state
     FROM tasker.tasks t LEFT JOIN tasker.task_transitions c ON c.task_uuid = t.task_uuid AND c.most_recent`,
  );
  return {
    tasks: count,
    seconds,
    tasksPerSecond: count / seconds,
    latency: distribution(rows.map((r) => r.ms)),
    failed: rows.filter((r) => r.state !== 'complete').length,
  };
}

async function runScenario(
  scenario: Scenario,
  admin: PostgresDatabase,
  rig: Rig,
  templatesDir: string,
): Promise<ScenarioResult> {
  const file = join(mkdtempSync(join(tmpdir(), 'tasker-modes-bench-')), 'tasker.toml');
  writeFileSync(file, scenario.toml);
  const base = { TASKER_ENV: 'production', LOG_LEVEL: 'info', TASKER_CONFIG_PATH: file };
  const processes: TaskerProcess[] = [];
  try {
    for (const mode of scenario.workers) {
      processes.push(
        await startWorkerProcess({
          databaseUrl: config.databaseUrl,
          env: { ...base, TASKER_DEPLOYMENT_MODE: mode },
          handlers: HANDLERS,
          templates: templatesDir,
        }),
      );
    }
    for (const mode of scenario.orchestrators) {
      processes.push(
        await startOrchestrationProcess({
          databaseUrl: config.databaseUrl,
          env: { ...base, TASKER_DEPLOYMENT_MODE: mode },
        }),
      );
    }
    const runs = scenario.slow ? config.slowLinearRuns : config.linearRuns;
    progress(`${scenario.label}: linear 4-step, ${runs} runs one at a time`);
    await resetState(admin);
    const chain = await linear(rig, runs);
    progress(`${scenario.label}: ${config.diamonds} diamonds submitted at once`);
    await resetState(admin);
    const diamonds = await bulk(rig, DIAMOND, config.diamonds);
    rig.feed.clear();
    return { scenario, linearRuns: runs, linear: chain.ms, linearFailed: chain.failed, diamonds };
  } finally {
    for (const proc of processes) await stopProcess(proc);
    rmSync(file, { force: true });
  }
}

const ms = (value: number): string => fixed(value, 1);

async function main(): Promise<void> {
  await ensureDatabaseExists(config.databaseUrl);
  const admin = new PostgresDatabase(config.databaseUrl, { maxConnections: 2 });
  const poller = new PostgresDatabase(config.databaseUrl, { maxConnections: 1 });
  const rig: Rig = {
    creator: new PostgresDatabase(config.databaseUrl, { maxConnections: CREATORS }),
    poller,
    feed: new TaskFinishedFeed(poller),
    templates: new TemplateCache({ enabled: true, maxSize: 100, ttlSeconds: 3_600 }),
  };
  const templatesDir = mkdtempSync(join(tmpdir(), 'tasker-modes-templates-'));
  try {
    await migrate(admin);
    await rig.feed.start();
    for (const [name, text] of Object.entries(BENCH_TEMPLATE_FILES))
      writeFileSync(join(templatesDir, name), text);
    const machine = await describeMachine(admin);
    printMachineHeader(
      'Tasker deployment-mode benchmark (real tasker processes, no-op handlers)',
      machine,
      admin.displayName,
    );
    console.log(
      `  settings:   linear 4-step one at a time (${config.linearRuns} runs; ${config.slowLinearRuns} for PollingOnly defaults; +5 warm-up); ${config.diamonds} diamonds submitted at once by ${CREATORS} concurrent creators\n` +
        '              TASKER_ENV=production; results applied in the worker (apply_results_inline, the default)\n' +
        '              linear: createTask() called → the tasker_task_finished NOTIFY arrived (what GET ?wait=N waits for)\n',
    );
    const results: ScenarioResult[] = [];
    // BENCH_MODES_ONLY=EventDrivenOnly,Hybrid runs those scenarios, in that order (labels up to the space).
    const only = (process.env.BENCH_MODES_ONLY ?? '').split(',').filter((label) => label !== '');
    const chosen =
      only.length === 0
        ? SCENARIOS
        : only.map((label) => {
            const scenario = SCENARIOS.find((s) => s.label.split(' ')[0] === label || s.label === label);
            if (scenario === undefined) throw new Error(`BENCH_MODES_ONLY: no scenario ${label}`);
            return scenario;
          });
    for (const scenario of chosen) results.push(await runScenario(scenario, admin, rig, templatesDir));
    console.log(
      formatTable(
        [
          'mode',
          'linear p50 ms',
          'p95',
          'p99',
          'runs',
          'diamonds/s',
          'diamond p50 ms',
          'p99',
          'failed',
          'how work is found',
        ],
        results.map((r) => [
          r.scenario.label,
          ms(r.linear.p50),
          ms(r.linear.p95),
          ms(r.linear.p99),
          String(r.linearRuns),
          fixed(r.diamonds.tasksPerSecond, 0),
          ms(r.diamonds.latency.p50),
          ms(r.diamonds.latency.p99),
          String(r.linearFailed + r.diamonds.failed),
          r.scenario.note,
        ]),
        [false, true, true, true, true, true, true, true, true, false],
      ),
    );
    console.log(
      "   PollingOnly: a new task waits for the worker's next poll (half an interval on average); the steps after\n" +
        '   the first are claimed in the completing commit of their parent (inline results), so they wait for no poll.\n' +
        '   diamonds: submitted at once by 8 concurrent createTask() calls; latency per task from its created_at to its last transition.',
    );
    console.log(
      `BENCH_JSON ${JSON.stringify({
        bench: 'modes',
        machine,
        results: results.map((r) => ({
          mode: r.scenario.label,
          linear: r.linear,
          diamonds: { ...r.diamonds },
        })),
      })}`,
    );
  } finally {
    await rig.feed.stop();
    await rig.creator.close();
    await rig.poller.close();
    await admin.close();
    rmSync(templatesDir, { recursive: true, force: true });
  }
}

await main();
