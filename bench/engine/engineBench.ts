/**
 * Engine benchmark: end-to-end latency and throughput of whole workflows, with one orchestration instance
 * and one worker instance each in a child process of its own and no-op handlers, against a real
 * PostgreSQL. It only prints figures (tables and one `BENCH_JSON {...}` line); nothing here passes or
 * fails. What each figure means and how to run it: bench/README.md.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDatabaseExists } from '../../src/db/createDatabase.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { createTask } from '../../src/orchestration/taskInitializer.ts';
import { TemplateCache } from '../../src/orchestration/templateCache.ts';
import {
  describeMachine,
  distribution,
  envIntegerList,
  envNumber,
  fixed,
  formatLoadAverage,
  formatTable,
  loadAverage,
  printMachineHeader,
  progress,
  round,
  resetState,
} from '../benchSupport.ts';
import type { Distribution, MachineInfo } from '../benchSupport.ts';
import { DIAMOND, LINEAR, ONE_STEP, taskRequest } from './benchTemplates.ts';
import { COMPETITORS, TARGETS } from './issueTargets.ts';
import { TaskFinishedFeed } from './taskFinishedFeed.ts';
import type { BenchWorkflow } from './benchTemplates.ts';
import { startChild, stopChild } from './processes.ts';
import type { Child } from './processes.ts';

const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/tasker_bench_engine';
const ORCHESTRATOR_SCRIPT = new URL('./orchestratorProcess.ts', import.meta.url);
const WORKER_SCRIPT = new URL('./workerProcess.ts', import.meta.url);
const ORCHESTRATOR_POOL_SIZE = 4;
const TERMINAL_STATES = ['complete', 'error', 'cancelled', 'resolved_manually'];
/** How often the bulk scenarios look whether every task has finished. */
/** How the bulk scenarios submit their tasks, for the headings. */
function submission(config: BenchConfig): string {
  return config.createConcurrency === null
    ? 'every createTask() call in flight together'
    : `${config.createConcurrency} concurrent createTask() loops`;
}

/** Connections of the bench's creating pool (the default of `[database] max_connections`). */
const CREATOR_POOL_SIZE = 10;
/** How long the bulk scenarios wait for task-finished notifications before asking the database. */
const BULK_CHECK_MS = 1_000;
/** A single linear run slower than this is a hang, not a sample. */
const LINEAR_RUN_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------- config

type Mode = 'inline' | 'orchestrator';
const MODES: readonly Mode[] = ['inline', 'orchestrator'];
const MODE_LABEL: Record<Mode, string> = { inline: 'worker-inline', orchestrator: 'orchestrator' };

interface BenchConfig {
  databaseUrl: string;
  modes: Mode[];
  linearRuns: number;
  linearWarmup: number;
  pollMs: number;
  /** How a linear run's end is seen: the task-finished NOTIFY (default) or polling every pollMs. */
  wait: 'notify' | 'poll';
  diamonds: number;
  oneStepTasks: number;
  /** createTask calls in flight in the bulk scenarios; null: every task of the scenario at once. */
  createConcurrency: number | null;
  workerCapacity: number;
  /** Worker maxConcurrentHandlers values the bulk scenarios (diamonds, one-step) are run with. */
  bulkCapacities: number[];
  workerPoolSize: number;
  timeoutSeconds: number;
}

function readModes(): Mode[] {
  const raw = process.env.BENCH_MODES;
  if (raw === undefined || raw.trim() === '') return [...MODES];
  const modes = raw.split(',').map((part) => part.trim());
  const unknown = modes.filter((mode) => !MODES.some((known) => known === mode));
  if (unknown.length > 0 || modes.length === 0) {
    throw new Error(`BENCH_MODES must list ${MODES.join(' and/or ')}, got ${JSON.stringify(raw)}`);
  }
  return MODES.filter((mode) => modes.includes(mode));
}

function readConfig(): BenchConfig {
  const whole = (name: string, fallback: number): number => Math.round(envNumber(name, fallback));
  const workerCapacity = whole('BENCH_WORKER_CAPACITY', 10);
  return {
    databaseUrl: process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL,
    modes: readModes(),
    linearRuns: whole('BENCH_LINEAR_RUNS', 200),
    linearWarmup: whole('BENCH_LINEAR_WARMUP', 10),
    pollMs: envNumber('BENCH_POLL_MS', 1),
    wait: process.env.BENCH_WAIT === 'poll' ? 'poll' : 'notify',
    diamonds: whole('BENCH_DIAMONDS', 500),
    oneStepTasks: whole('BENCH_ONE_STEP_TASKS', 5000),
    createConcurrency: ['', 'all'].includes((process.env.BENCH_CREATE_CONCURRENCY ?? '').trim())
      ? null
      : whole('BENCH_CREATE_CONCURRENCY', 1),
    workerCapacity,
    bulkCapacities: envIntegerList('BENCH_BULK_CAPACITIES', [workerCapacity, 50]),
    workerPoolSize: whole('BENCH_WORKER_POOL', 10),
    timeoutSeconds: envNumber('BENCH_TIMEOUT_SECONDS', 120),
  };
}

// ---------------------------------------------------------------------------------------------- results

interface LinearResult {
  runs: number;
  /** Runs whose task ended in a terminal state other than complete. */
  failed: number;
  /** performance.now() in the bench process: createTask() called → a poll saw the task terminal. */
  clientMs: Distribution;
  /** tasks.created_at → created_at of the task's `complete` transition. */
  databaseMs: Distribution;
  edges: { interval: string; ms: Distribution }[];
}

interface BulkResult {
  workflow: string;
  capacity: number;
  tasks: number;
  steps: number;
  failed: number;
  /** Time until the last createTask() returned. */
  createSeconds: number;
  /** First createTask() called → a poll saw every task terminal. */
  clientSeconds: number;
  /** created_at of the first task → created_at of the last `complete` transition. */
  databaseSeconds: number;
  taskLatencyMs: Distribution;
  /** A step's `enqueued` transition → its `in_progress` transition. */
  enqueueToStartMs: Distribution;
}

interface ModeResult {
  mode: Mode;
  linear: LinearResult;
  diamonds: BulkResult[];
  oneStep: BulkResult[];
}

// ---------------------------------------------------------------------------------------------- rig

/** Everything the scenarios share. The bench's own pools never serve the orchestrator or the worker. */
interface Rig {
  config: BenchConfig;
  /** Reset between scenarios and the post-run queries of the timestamps. */
  admin: PostgresDatabase;
  /** createTask calls: one connection per concurrent creator. */
  creator: PostgresDatabase;
  /** One connection that does nothing but look whether tasks have finished (bulk scenarios, BENCH_WAIT=poll). */
  poller: PostgresDatabase;
  /** The tasker_task_finished notifications (linear runs, BENCH_WAIT=notify). */
  feed: TaskFinishedFeed;
  templates: TemplateCache;
  children: Set<Child>;
}

async function launch(rig: Rig, name: string, script: URL, env: Record<string, string>): Promise<Child> {
  progress(`starting ${name}`);
  const child = await startChild(name, script, {
    BENCH_CHILD_DATABASE_URL: rig.config.databaseUrl,
    ...env,
  });
  rig.children.add(child);
  return child;
}

async function stop(rig: Rig, child: Child): Promise<void> {
  const code = await stopChild(child);
  rig.children.delete(child);
  if (code !== 0) progress(`${child.name} exited with ${code}`);
}

async function stopAll(rig: Rig): Promise<void> {
  await Promise.all([...rig.children].map((child) => stop(rig, child)));
}

function launchWorker(rig: Rig, mode: Mode, capacity: number): Promise<Child> {
  return launch(rig, `worker (${MODE_LABEL[mode]}, capacity ${capacity})`, WORKER_SCRIPT, {
    BENCH_CHILD_APPLY_INLINE: mode === 'inline' ? '1' : '0',
    BENCH_CHILD_MAX_CONCURRENT_HANDLERS: String(capacity),
    BENCH_CHILD_POOL_SIZE: String(rig.config.workerPoolSize),
  });
}

// ---------------------------------------------------------------------------------------------- scenario 1 + 2

async function waitForTask(rig: Rig, taskUuid: string): Promise<string> {
  if (rig.config.wait === 'notify') return rig.feed.wait(taskUuid, LINEAR_RUN_TIMEOUT_MS);
  const deadline = performance.now() + LINEAR_RUN_TIMEOUT_MS;
  for (;;) {
    const { rows } = await rig.poller.query<{ current_state: string }>(
      'SELECT current_state FROM tasker.tasks WHERE task_uuid = $1',
      [taskUuid],
      { name: 'bench_task_state' },
    );
    const state = rows[0]?.current_state;
    if (state !== undefined && TERMINAL_STATES.includes(state)) return state;
    if (performance.now() > deadline) {
      throw new Error(
        `task ${taskUuid} was still ${state ?? 'missing'} after ${LINEAR_RUN_TIMEOUT_MS / 1000} s`,
      );
    }
    await sleep(rig.config.pollMs);
  }
}

/** SQL for milliseconds between two timestamptz values, as float8 (which pg returns as a number). */
const ms = (from: string, to: string): string => `(extract(epoch FROM (${to}) - (${from})) * 1000)::float8`;

async function taskLatencies(rig: Rig, taskUuids: readonly string[] | null): Promise<number[]> {
  const { rows } = await rig.admin.query<{ ms: number }>(
    `SELECT ${ms('t.created_at', 'c.created_at')} AS ms
     FROM tasker.tasks t
     JOIN tasker.task_transitions c ON c.task_uuid = t.task_uuid AND c.to_state = 'complete'
     WHERE $1::uuid[] IS NULL OR t.task_uuid = ANY($1::uuid[])`,
    [taskUuids],
  );
  return rows.map((row) => row.ms);
}

const EDGE_INTERVALS = [
  ['created', 'task created → first step started'],
  ['result_enqueued', 'step result → next step enqueued'],
  ['enqueued_started', 'next step enqueued → started'],
  ['result_started', 'step result → next step started'],
  ['started_started', 'step started → next step started'],
  ['last_complete', 'last step result → task complete'],
] as const;

/**
 * The per-step timestamps of the given tasks, paired along the DAG's edges. A step's result is its
 * `enqueued_for_orchestration` transition (workflow_step_result_audit.recorded_at is the same now() of
 * the worker's completing transaction); started is its `in_progress` transition (the claim transaction).
 */
async function edgeLatencies(rig: Rig, taskUuids: readonly string[]): Promise<LinearResult['edges']> {
  const { rows } = await rig.admin.query<{ kind: string; ms: number | null }>(
    `WITH steps AS (
       SELECT s.workflow_step_uuid AS step, s.task_uuid AS task,
              max(tr.created_at) FILTER (WHERE tr.to_state = 'enqueued') AS enqueued_at,
              max(tr.created_at) FILTER (WHERE tr.to_state = 'in_progress') AS started_at,
              max(tr.created_at) FILTER (WHERE tr.to_state = 'enqueued_for_orchestration') AS result_at
       FROM tasker.workflow_steps s
       JOIN tasker.workflow_step_transitions tr ON tr.workflow_step_uuid = s.workflow_step_uuid
       WHERE s.task_uuid = ANY($1::uuid[])
       GROUP BY s.workflow_step_uuid, s.task_uuid
     ), edges AS (
       SELECT p.result_at AS parent_result, p.started_at AS parent_started, c.enqueued_at, c.started_at
       FROM tasker.workflow_step_edges e
       JOIN steps p ON p.step = e.from_step_uuid
       JOIN steps c ON c.step = e.to_step_uuid
     )
     SELECT 'created' AS kind, ${ms('t.created_at', 's.started_at')} AS ms
     FROM steps s JOIN tasker.tasks t ON t.task_uuid = s.task
     WHERE NOT EXISTS (SELECT 1 FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = s.step)
     UNION ALL SELECT 'result_enqueued', ${ms('parent_result', 'enqueued_at')} FROM edges
     UNION ALL SELECT 'enqueued_started', ${ms('enqueued_at', 'started_at')} FROM edges
     UNION ALL SELECT 'result_started', ${ms('parent_result', 'started_at')} FROM edges
     UNION ALL SELECT 'started_started', ${ms('parent_started', 'started_at')} FROM edges
     UNION ALL SELECT 'last_complete', ${ms('s.result_at', 'c.created_at')}
     FROM steps s JOIN tasker.task_transitions c ON c.task_uuid = s.task AND c.to_state = 'complete'
     WHERE NOT EXISTS (SELECT 1 FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = s.step)`,
    [taskUuids],
  );
  return EDGE_INTERVALS.map(([kind, interval]) => ({
    interval,
    ms: distribution(rows.flatMap((row) => (row.kind === kind && row.ms !== null ? [row.ms] : []))),
  }));
}

async function benchLinear(rig: Rig): Promise<LinearResult> {
  const { linearRuns, linearWarmup } = rig.config;
  await resetState(rig.admin);
  const clientMs: number[] = [];
  const kept: string[] = [];
  let failed = 0;
  for (let index = 0; index < linearWarmup + linearRuns; index++) {
    const startedAt = performance.now();
    const task = await createTask(rig.creator, taskRequest(LINEAR, index), { templates: rig.templates });
    const state = await waitForTask(rig, task.taskUuid);
    const elapsed = performance.now() - startedAt;
    if (index < linearWarmup) continue;
    clientMs.push(elapsed);
    kept.push(task.taskUuid);
    if (state !== 'complete') failed += 1;
  }
  return {
    runs: linearRuns,
    failed,
    clientMs: distribution(clientMs),
    databaseMs: distribution(await taskLatencies(rig, kept)),
    edges: await edgeLatencies(rig, kept),
  };
}

// ---------------------------------------------------------------------------------------------- scenario 3 + 4

/**
 * Waits until all `total` tasks of the run have finished: the task-finished notifications count them as they
 * finish. Once a second without the count reached, the database is asked, in case a notification was lost.
 * (Counting unfinished tasks every 10 ms, as this did before, scans tasks_active_idx, which keeps an entry per
 * task until a vacuum: its cost grew with the run and took CPU from the engine it measured.)
 */
async function waitForAllTasks(rig: Rig, total: number): Promise<void> {
  const deadline = performance.now() + rig.config.timeoutSeconds * 1000;
  for (;;) {
    if (await rig.feed.waitForCount(total, BULK_CHECK_MS)) return;
    const { rows } = await rig.poller.query<{ active: string }>(
      `SELECT count(*) AS active FROM tasker.tasks
       WHERE current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')`,
      [],
      { name: 'bench_active_tasks' },
    );
    const active = Number(rows[0]?.active ?? 0);
    if (active === 0) return;
    if (performance.now() > deadline) {
      throw new Error(
        `${active} of ${total} tasks were still unfinished after ${rig.config.timeoutSeconds} s`,
      );
    }
  }
}

/**
 * Submits `count` tasks at once (every createTask call in flight together, or createConcurrency of them
 * at a time), waits for all of them to finish, then reads what the database recorded. The tables were emptied first, so "all tasks" is this run.
 */
async function benchBulk(
  rig: Rig,
  workflow: BenchWorkflow,
  count: number,
  capacity: number,
): Promise<BulkResult> {
  await resetState(rig.admin);
  rig.feed.clear();
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: rig.config.createConcurrency ?? count }, async () => {
      for (let seq = next++; seq < count; seq = next++) {
        await createTask(rig.creator, taskRequest(workflow, seq), { templates: rig.templates });
      }
    }),
  );
  const createdAt = performance.now();
  await waitForAllTasks(rig, count);
  const finishedAt = performance.now();

  const summary = await rig.admin.query<{ tasks: string; failed: string; window_ms: number | null }>(
    `SELECT count(*) AS tasks,
            count(*) FILTER (WHERE t.current_state <> 'complete') AS failed,
            ${ms('min(t.created_at)', 'max(c.created_at)')} AS window_ms
     FROM tasker.tasks t
     LEFT JOIN tasker.task_transitions c ON c.task_uuid = t.task_uuid AND c.to_state = 'complete'`,
  );
  const enqueueToStart = await rig.admin.query<{ ms: number }>(
    `SELECT ${ms('e.created_at', 's.created_at')} AS ms
     FROM tasker.workflow_step_transitions e
     JOIN tasker.workflow_step_transitions s
       ON s.workflow_step_uuid = e.workflow_step_uuid AND s.to_state = 'in_progress' AND s.sort_key = e.sort_key + 1
     WHERE e.to_state = 'enqueued'`,
  );
  const row = summary.rows[0];
  return {
    workflow: workflow.name,
    capacity,
    tasks: Number(row?.tasks ?? 0),
    steps: Number(row?.tasks ?? 0) * workflow.steps,
    failed: Number(row?.failed ?? 0),
    createSeconds: (createdAt - startedAt) / 1000,
    clientSeconds: (finishedAt - startedAt) / 1000,
    databaseSeconds: (row?.window_ms ?? Number.NaN) / 1000,
    taskLatencyMs: distribution(await taskLatencies(rig, null)),
    enqueueToStartMs: distribution(enqueueToStart.rows.map((r) => r.ms)),
  };
}

// ---------------------------------------------------------------------------------------------- modes

/**
 * One mode: a fresh orchestrator and worker, then every scenario. The worker is restarted only to change
 * its capacity for the one-step scenario.
 */
async function runMode(rig: Rig, mode: Mode): Promise<ModeResult> {
  const { config } = rig;
  const label = MODE_LABEL[mode];
  const orchestrator = await launch(rig, 'orchestrator', ORCHESTRATOR_SCRIPT, {
    BENCH_CHILD_POOL_SIZE: String(ORCHESTRATOR_POOL_SIZE),
  });
  try {
    let capacity = config.workerCapacity;
    let worker = await launchWorker(rig, mode, capacity);
    try {
      progress(`${label}: linear 4-step, ${config.linearRuns} runs (+${config.linearWarmup} warm-up)`);
      const linear = await benchLinear(rig);
      const diamonds: BulkResult[] = [];
      const oneStep: BulkResult[] = [];
      for (const wanted of config.bulkCapacities) {
        if (wanted !== capacity) {
          await stop(rig, worker);
          capacity = wanted;
          worker = await launchWorker(rig, mode, capacity);
        }
        progress(`${label}: ${config.diamonds} diamonds, worker capacity ${capacity}`);
        diamonds.push(await benchBulk(rig, DIAMOND, config.diamonds, capacity));
        progress(`${label}: ${config.oneStepTasks} one-step tasks, worker capacity ${capacity}`);
        oneStep.push(await benchBulk(rig, ONE_STEP, config.oneStepTasks, capacity));
      }
      return { mode, linear, diamonds, oneStep };
    } finally {
      await stop(rig, worker);
    }
  } finally {
    await stop(rig, orchestrator);
  }
}

const perSecond = (count: number, seconds: number): number => (seconds > 0 ? count / seconds : Number.NaN);

/** The targets-table cell for a bulk scenario: its best run's rate against the target, with the capacity. */
function bestRateCell(runs: readonly BulkResult[], target: number): string {
  const best = bestRun(runs);
  return best === undefined
    ? 'n/a'
    : versus(perSecond(best.tasks, best.clientSeconds), target, false, 0, ` (capacity ${best.capacity})`);
}

/** The run with the highest client-observed rate (of the capacities tried). */
function bestRun(runs: readonly BulkResult[]): BulkResult | undefined {
  return [...runs].sort(
    (a, b) => perSecond(b.tasks, b.clientSeconds) - perSecond(a.tasks, a.clientSeconds),
  )[0];
}

// ---------------------------------------------------------------------------------------------- yardstick

const COMMIT_PROBE_SAMPLES = 200;

/**
 * The floor under every engine transaction on this server: one durable commit that writes a row and
 * sends a NOTIFY, as each create, result and claim does, timed from one client, one after another.
 */
async function measureCommit(rig: Rig): Promise<Distribution> {
  await rig.admin.exec('CREATE TABLE IF NOT EXISTS public.tasker_bench_commit_probe (v integer)');
  try {
    const samples: number[] = [];
    for (let index = 0; index < COMMIT_PROBE_SAMPLES; index++) {
      const startedAt = performance.now();
      await rig.poller.query(
        "WITH row AS (INSERT INTO public.tasker_bench_commit_probe VALUES ($1)) SELECT pg_notify('tasker_bench_probe', '')",
        [index],
        { name: 'bench_commit_probe' },
      );
      samples.push(performance.now() - startedAt);
    }
    return distribution(samples);
  } finally {
    await rig.admin.exec('DROP TABLE IF EXISTS public.tasker_bench_commit_probe');
  }
}

// ---------------------------------------------------------------------------------------------- report

function printHeader(
  machine: MachineInfo,
  config: BenchConfig,
  databaseName: string,
  commit: Distribution,
): void {
  printMachineHeader(
    'Tasker engine benchmark (1 orchestration process + 1 worker process, no-op handlers)',
    machine,
    databaseName,
  );
  console.log(
    `  commit:     one durable INSERT + NOTIFY transaction, ${commit.count} in a row from one client: ` +
      `p50 ${fixed(commit.p50, 2)} ms, p99 ${fixed(commit.p99, 2)} ms (the floor under each engine transaction)`,
  );
  console.log(
    `  settings:   linear ${config.linearRuns} runs one at a time (+${config.linearWarmup} warm-up, not kept); ` +
      `${config.diamonds} diamonds; ${config.oneStepTasks} one-step tasks; bulk tasks created by ` +
      `${submission(config)} (createTask batches concurrent calls into shared commits)`,
  );
  console.log(
    `  processes:  orchestrator and worker each in its own child process, woken by LISTEN/NOTIFY (1 s ` +
      `safety-net poll); worker maxConcurrentHandlers ${config.workerCapacity} (bulk scenarios: ` +
      `${config.bulkCapacities.join(' and ')}), worker pool ${config.workerPoolSize} connections, ` +
      `orchestrator pool ${ORCHESTRATOR_POOL_SIZE}`,
  );
  console.log(
    "  modes:      worker-inline = results applied in the worker's commit (applyResultsInline: true); " +
      'orchestrator = results applied by the orchestrator (applyResultsInline: false)',
  );
  console.log(
    `  clocks:     client-observed = performance.now() in the bench process, from just before createTask() until ` +
      (config.wait === 'notify'
        ? "the task's tasker_task_finished NOTIFY arrives on the bench's own LISTEN connection (what GET ?wait=N waits for);"
        : `a poll on its own connection (every ~${config.pollMs} ms) sees the task finished;`),
  );
  console.log(
    "              database-recorded = differences of the clock_timestamp() stamps of the engine's transitions " +
      "(task created_at is its creating transaction's start)",
  );
  console.log('');
}

const LATENCY_HEADERS = ['p50', 'p95', 'p99', 'max', 'mean'];
const latencyCells = (d: Distribution): string[] =>
  [d.p50, d.p95, d.p99, d.max, d.mean].map((v) => fixed(v, 2));

function printLinear(results: readonly ModeResult[], config: BenchConfig): void {
  console.log('1. Linear 4-step workflow, one task at a time: create → complete (ms)');
  const rows = results.flatMap((r) => [
    [
      MODE_LABEL[r.mode],
      'client-observed',
      String(r.linear.runs),
      String(r.linear.failed),
      ...latencyCells(r.linear.clientMs),
    ],
    [
      MODE_LABEL[r.mode],
      'database-recorded',
      String(r.linear.databaseMs.count),
      String(r.linear.failed),
      ...latencyCells(r.linear.databaseMs),
    ],
  ]);
  console.log(
    formatTable(['mode', 'clock', 'runs', 'failed', ...LATENCY_HEADERS], rows, [
      false,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]),
  );
  console.log(
    config.wait === 'notify'
      ? "   client-observed: createTask() called → the task's tasker_task_finished notification arrived (sent at the finishing commit)."
      : `   client-observed: createTask() called → a poll saw the task complete (polls every ~${config.pollMs} ms, ` +
          'so up to that much late).',
  );
  console.log(
    '   database-recorded: tasks.created_at (start of the creating transaction) → created_at of the ' +
      "task's complete transition (start of the transaction that finished it; that commit is not included).",
  );
  console.log('');
}

function printEdges(results: readonly ModeResult[]): void {
  console.log('2. Per-edge latency in the linear runs (ms, database-recorded)');
  const rows = results.flatMap((r) =>
    r.linear.edges.map((edge) => [
      MODE_LABEL[r.mode],
      edge.interval,
      String(edge.ms.count),
      ...[edge.ms.p50, edge.ms.p95, edge.ms.p99, edge.ms.max].map((v) => fixed(v, 2)),
    ]),
  );
  console.log(
    formatTable(['mode', 'interval', 'samples', 'p50', 'p95', 'p99', 'max'], rows, [
      false,
      false,
      true,
      true,
      true,
      true,
      true,
    ]),
  );
  for (const line of [
    "   step result = the step's enqueued_for_orchestration transition, written by the worker's completing",
    '   transaction; started = its in_progress transition; each transition is stamped with clock_timestamp()',
    "   when it is written (the commit follows); enqueued = written by whoever applied the parent's result.",
    '   With worker-inline the worker stores a result, applies it and claims the next step in ONE transaction,',
    '   so "step started → next step started" (one full claim+handler+commit cycle) is the per-edge cost.',
  ]) {
    console.log(line);
  }
  console.log('');
}

function bulkCells(b: BulkResult): string[] {
  return [
    String(b.tasks),
    String(b.failed),
    fixed(b.createSeconds, 2),
    fixed(b.clientSeconds, 2),
    fixed(perSecond(b.tasks, b.clientSeconds), 0),
    fixed(perSecond(b.steps, b.clientSeconds), 0),
    fixed(b.databaseSeconds, 2),
    fixed(perSecond(b.tasks, b.databaseSeconds), 0),
  ];
}

/** Creation still ran in the last tenth of the run: the rate is then the pace of createTask, not the engine's. */
const creationBound = (b: BulkResult): boolean => b.createSeconds >= 0.9 * b.clientSeconds;

const BULK_HEADERS = ['tasks', 'failed', 'create s', 'client s', 'tasks/s', 'steps/s', 'db s', 'db tasks/s'];

function printDiamonds(results: readonly ModeResult[], config: BenchConfig): void {
  console.log(`3. ${config.diamonds} diamonds (A → B, C → D) submitted at once: ${submission(config)}`);
  const rows = results.flatMap((r) => {
    const best = bestRun(r.diamonds);
    return r.diamonds.map((b) => [
      MODE_LABEL[r.mode],
      String(b.capacity),
      ...bulkCells(b),
      fixed(b.taskLatencyMs.p50, 1),
      fixed(b.taskLatencyMs.p99, 1),
      runNotes(b, b === best && r.diamonds.length > 1),
    ]);
  });
  const headers = ['mode', 'capacity', ...BULK_HEADERS, 'latency p50 ms', 'latency p99 ms', 'note'];
  console.log(formatTable(headers, rows, [false, ...headers.slice(1, -1).map(() => true), false]));
  printBulkNotes();
  console.log('');
}

function printOneStep(results: readonly ModeResult[], config: BenchConfig): void {
  console.log(`4. ${config.oneStepTasks} one-step tasks submitted at once: ${submission(config)}`);
  const rows = results.flatMap((r) => {
    const best = bestRun(r.oneStep);
    return r.oneStep.map((b) => [
      MODE_LABEL[r.mode],
      String(b.capacity),
      ...bulkCells(b).filter((_, index) => index !== 5),
      fixed(b.enqueueToStartMs.p50, 1),
      fixed(b.enqueueToStartMs.p99, 1),
      fixed(b.taskLatencyMs.p50, 1),
      fixed(b.taskLatencyMs.p99, 1),
      runNotes(b, b === best && r.oneStep.length > 1),
    ]);
  });
  const headers = [
    'mode',
    'capacity',
    ...BULK_HEADERS.filter((h) => h !== 'steps/s'),
    'enq→start p50 ms',
    'enq→start p99 ms',
    'latency p50 ms',
    'latency p99 ms',
    'note',
  ];
  console.log(formatTable(headers, rows, [false, ...headers.slice(1, -1).map(() => true), false]));
  printBulkNotes();
  console.log(
    "   enq→start: the step's enqueued transition (the creating transaction's start) → its in_progress " +
      "transition (the worker's claim transaction's start). capacity = worker maxConcurrentHandlers.",
  );
  console.log('');
}

/** The note column of a bulk row: the best of the capacities tried, and whether creation set the pace. */
function runNotes(run: BulkResult, best: boolean): string {
  return [best ? 'best' : '', creationBound(run) ? 'creation-bound' : '']
    .filter((note) => note !== '')
    .join(', ');
}

function printBulkNotes(): void {
  console.log(
    '   create s: until the last createTask() returned. client s: first createTask() called → the last ' +
      "task's tasker_task_finished notification arrived; tasks/s and steps/s use it.",
  );
  console.log(
    '   db s: created_at of the first task → the last complete transition (database-recorded). latency: per ' +
      'task, created_at → its complete transition.',
  );
  console.log(
    '   creation-bound: the last createTask() returned in the final tenth of the run, so the pace of task ' +
      'creation (one durable commit with NOTIFY per task) set the rate, not the worker or the orchestrator.',
  );
}

/** A figure and whether it is within the target: ✓ within, ✗ not. */
function versus(value: number, target: number, lowerIsBetter: boolean, digits: number, suffix = ''): string {
  if (!Number.isFinite(value)) return 'n/a';
  const within = lowerIsBetter ? value <= target : value >= target;
  return `${value.toFixed(digits)}${suffix} ${within ? '✓' : '✗'}`;
}

function printTargets(results: readonly ModeResult[]): void {
  console.log(
    'Targets from the issue (✓ within, ✗ not), with the reference figures it quotes for competitors',
  );
  const byMode = (fn: (r: ModeResult) => string): string[] => results.map(fn);
  const rows = [
    [
      'linear 4-step p50, client-observed (ms)',
      `≤ ${TARGETS.linearP50Ms}`,
      ...byMode((r) => versus(r.linear.clientMs.p50, TARGETS.linearP50Ms, true, 2)),
      ...COMPETITORS.map((c) => c.linearP50Ms.toFixed(1)),
    ],
    [
      'linear 4-step p99, client-observed (ms)',
      `≤ ${TARGETS.linearP99Ms}`,
      ...byMode((r) => versus(r.linear.clientMs.p99, TARGETS.linearP99Ms, true, 2)),
      ...COMPETITORS.map(() => '-'),
    ],
    [
      'linear 4-step p50, database-recorded (ms)',
      `≤ ${TARGETS.linearP50Ms}`,
      ...byMode((r) => versus(r.linear.databaseMs.p50, TARGETS.linearP50Ms, true, 2)),
      ...COMPETITORS.map(() => '-'),
    ],
    [
      'linear 4-step p99, database-recorded (ms)',
      `≤ ${TARGETS.linearP99Ms}`,
      ...byMode((r) => versus(r.linear.databaseMs.p99, TARGETS.linearP99Ms, true, 2)),
      ...COMPETITORS.map(() => '-'),
    ],
    [
      'diamonds/s, client-observed, best capacity',
      `≥ ${TARGETS.diamondsPerSecond}`,
      ...byMode((r) => bestRateCell(r.diamonds, TARGETS.diamondsPerSecond)),
      ...COMPETITORS.map((c) => String(c.diamondsPerSecond)),
    ],
    [
      'one-step tasks/s, client-observed, best capacity',
      `≥ ${TARGETS.oneStepPerSecond.toLocaleString('en-US')}`,
      ...byMode((r) => bestRateCell(r.oneStep, TARGETS.oneStepPerSecond)),
      ...COMPETITORS.map((c) => c.oneStepPerSecond.toLocaleString('en-US')),
    ],
  ];
  const headers = [
    'metric',
    'target',
    ...results.map((r) => MODE_LABEL[r.mode]),
    ...COMPETITORS.map((c) => c.name),
  ];
  console.log(formatTable(headers, rows, [false, false, ...headers.slice(2).map(() => true)]));
  console.log('');
}

const jsonDistribution = (d: Distribution): Record<string, number | null> => ({
  count: d.count,
  p50: round(d.p50, 3),
  p95: round(d.p95, 3),
  p99: round(d.p99, 3),
  max: round(d.max, 3),
  mean: round(d.mean, 3),
});

function jsonBulk(b: BulkResult): Record<string, unknown> {
  return {
    workflow: b.workflow,
    capacity: b.capacity,
    tasks: b.tasks,
    steps: b.steps,
    failed: b.failed,
    createSeconds: round(b.createSeconds, 3),
    clientSeconds: round(b.clientSeconds, 3),
    databaseSeconds: round(b.databaseSeconds, 3),
    tasksPerSecond: round(perSecond(b.tasks, b.clientSeconds), 1),
    stepsPerSecond: round(perSecond(b.steps, b.clientSeconds), 1),
    databaseTasksPerSecond: round(perSecond(b.tasks, b.databaseSeconds), 1),
    creationBound: creationBound(b),
    taskLatencyMs: jsonDistribution(b.taskLatencyMs),
    enqueueToStartMs: jsonDistribution(b.enqueueToStartMs),
  };
}

function printJson(
  machine: MachineInfo,
  config: BenchConfig,
  commit: Distribution,
  results: readonly ModeResult[],
  loadAtEnd: number[],
  totalSeconds: number,
): void {
  const summary = {
    machine,
    commitMs: jsonDistribution(commit),
    loadAverageAtEnd: loadAtEnd,
    config: {
      linearRuns: config.linearRuns,
      linearWarmup: config.linearWarmup,
      pollMs: config.pollMs,
      diamonds: config.diamonds,
      oneStepTasks: config.oneStepTasks,
      createConcurrency: config.createConcurrency,
      workerCapacity: config.workerCapacity,
      bulkCapacities: config.bulkCapacities,
      workerPoolSize: config.workerPoolSize,
      orchestratorPoolSize: ORCHESTRATOR_POOL_SIZE,
      processModel: 'one orchestrator process and one worker process, separate from the bench process',
    },
    modes: results.map((r) => ({
      mode: MODE_LABEL[r.mode],
      applyResultsInline: r.mode === 'inline',
      linear: {
        runs: r.linear.runs,
        failed: r.linear.failed,
        clientObservedMs: jsonDistribution(r.linear.clientMs),
        databaseRecordedMs: jsonDistribution(r.linear.databaseMs),
        edgesMs: r.linear.edges.map((edge) => ({ interval: edge.interval, ...jsonDistribution(edge.ms) })),
      },
      diamonds: r.diamonds.map(jsonBulk),
      diamondsBestCapacity: bestRun(r.diamonds)?.capacity ?? null,
      oneStep: r.oneStep.map(jsonBulk),
      oneStepBestCapacity: bestRun(r.oneStep)?.capacity ?? null,
    })),
    targets: TARGETS,
    competitors: COMPETITORS,
    totalSeconds: round(totalSeconds, 1),
  };
  console.log(`BENCH_JSON ${JSON.stringify(summary)}`);
}

// ---------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = performance.now();
  const config = readConfig();
  await ensureDatabaseExists(config.databaseUrl);
  const rig: Rig = {
    config,
    admin: new PostgresDatabase(config.databaseUrl, {
      maxConnections: 2,
      applicationName: 'tasker-bench-admin',
    }),
    creator: new PostgresDatabase(config.databaseUrl, {
      // Like a service's pool: concurrent creations share commits (createTask batches them), so many calls
      // in flight need few connections.
      maxConnections: Math.min(config.createConcurrency ?? CREATOR_POOL_SIZE, CREATOR_POOL_SIZE),
      applicationName: 'tasker-bench-creator',
    }),
    poller: new PostgresDatabase(config.databaseUrl, {
      maxConnections: 1,
      applicationName: 'tasker-bench-poller',
    }),
    templates: new TemplateCache(),
    children: new Set(),
    feed: undefined as unknown as TaskFinishedFeed,
  };
  rig.feed = new TaskFinishedFeed(rig.poller);
  // Ctrl-C or a kill of the bench must not leave the orchestrator and worker running.
  const onSignal = (signal: NodeJS.Signals): void => {
    progress(`${signal}: stopping the child processes`);
    void stopAll(rig).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await migrate(rig.admin);
    await rig.feed.start();
    const machine = await describeMachine(rig.admin);
    const commit = await measureCommit(rig);
    printHeader(machine, config, rig.admin.displayName, commit);
    const results: ModeResult[] = [];
    for (const mode of config.modes) results.push(await runMode(rig, mode));
    await resetState(rig.admin);
    const loadAtEnd = loadAverage();
    printLinear(results, config);
    printEdges(results);
    printDiamonds(results, config);
    printOneStep(results, config);
    printTargets(results);
    console.log(`Load average at end: ${formatLoadAverage(loadAtEnd)}`);
    console.log('');
    printJson(machine, config, commit, results, loadAtEnd, (performance.now() - startedAt) / 1000);
  } finally {
    await stopAll(rig);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await rig.feed.stop();
    await Promise.all([rig.admin.close(), rig.creator.close(), rig.poller.close()]);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
