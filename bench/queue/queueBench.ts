/**
 * Queue benchmark: throughput and wake-up latency of PgmqMessagingProvider against a real PostgreSQL.
 * It only prints figures (a table and one `BENCH_JSON {...}` line); nothing here passes or fails.
 * What each figure means and how to run it: bench/README.md.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  describeMachine,
  distribution,
  envNumber,
  fixed,
  formatTable,
  printMachineHeader,
  progress,
  round,
} from '../benchSupport.ts';
import type { MachineInfo } from '../benchSupport.ts';
import { ensureDatabaseExists } from '../../src/db/createDatabase.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import type { QueueSignal } from '../../src/messaging/messagingProvider.ts';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';

const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/tasker_bench';
const CLIENT_COUNTS = [1, 8] as const;
const SEND_BATCH_SIZE = 50;

/** Visibility timeout for every receive: far longer than any scenario, so nothing is ever redelivered. */
const VISIBILITY_TIMEOUT_SECONDS = 30;
const BATCH_RECEIVE_LIMIT = 50;
/** Rows per sendBatch call when pre-filling: large enough to be quick, small enough for one statement. */
const PREFILL_CHUNK = 1000;
/** Latency samples discarded first, so connection start-up and statement preparation are not measured. */
const LATENCY_WARMUP_SAMPLES = 20;
/** A wake-up slower than this counts as missed rather than stalling the run. */
const LATENCY_TIMEOUT_MS = 2000;
/** The figure the issue quotes for this 2-core machine, printed when pgbench is not run here. */
const ISSUE_PGBENCH_TPS = 4400;

// ---------------------------------------------------------------------------------------------- config

interface BenchConfig {
  databaseUrl: string;
  seconds: number;
  latencySamples: number;
  latencyIntervalMs: number;
  batchPrefill: number;
  runPgbench: boolean;
}

function readConfig(): BenchConfig {
  return {
    databaseUrl: process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL,
    seconds: envNumber('BENCH_SECONDS', 5),
    latencySamples: Math.round(envNumber('BENCH_LATENCY_SAMPLES', 2000)),
    latencyIntervalMs: envNumber('BENCH_LATENCY_INTERVAL_MS', 5),
    batchPrefill: Math.round(envNumber('BENCH_BATCH_PREFILL', 40_000)),
    runPgbench: process.env.BENCH_PGBENCH === '1',
  };
}

// ---------------------------------------------------------------------------------------------- results

interface ThroughputResult {
  scenario: string;
  clients: number;
  unit: string;
  count: number;
  seconds: number;
  perSecond: number;
  note: string;
}

interface LatencyResult {
  scenario: string;
  samples: number;
  missed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

interface Yardstick {
  measured: boolean;
  tps: number | null;
  note: string;
}

// ---------------------------------------------------------------------------------------------- context

/** What every scenario shares: the admin pool (setup, queue creation, clean-up) and the queues to drop. */
interface BenchContext {
  config: BenchConfig;
  admin: PostgresDatabase;
  adminQueue: PgmqMessagingProvider;
  queues: Set<string>;
}

/** A left-over queue from an interrupted run would skew the figures, so every scenario starts empty. */
async function freshQueue(ctx: BenchContext, queue: string): Promise<string> {
  await ctx.admin.query('SELECT pgmq.drop_queue($1)', [queue]);
  await ctx.adminQueue.ensureQueue(queue);
  ctx.queues.add(queue);
  return queue;
}

async function dropQueues(ctx: BenchContext): Promise<void> {
  for (const queue of ctx.queues) {
    await ctx.admin.query('SELECT pgmq.drop_queue($1)', [queue]);
  }
  ctx.queues.clear();
}

/** Roughly the size of a real step message, so JSON encoding and row width are realistic. */
function payload(seq: number): Record<string, unknown> {
  return {
    task_uuid: '0191d3a4-7c1e-7b52-9f0a-5d6c2e8b4a10',
    step_uuid: '0191d3a4-7c1e-7b52-9f0a-5d6c2e8b4a11',
    step_name: 'bench_step',
    attempt: 1,
    seq,
  };
}

// ---------------------------------------------------------------------------------------------- clients

/**
 * One benchmark client = its own PostgresDatabase with maxConnections 1 and its own provider: one backend
 * per client, like separate worker processes, so 8 clients really are 8 concurrent sessions.
 */
interface Client {
  db: PostgresDatabase;
  queue: PgmqMessagingProvider;
}

async function withClients<T>(url: string, count: number, fn: (clients: Client[]) => Promise<T>): Promise<T> {
  const clients: Client[] = Array.from({ length: count }, (_, index) => {
    const db = new PostgresDatabase(url, {
      maxConnections: 1,
      applicationName: `tasker-bench-client-${index + 1}`,
    });
    return { db, queue: new PgmqMessagingProvider(db) };
  });
  try {
    // Connect before the clock starts: connection set-up is not queue work.
    await Promise.all(clients.map((client) => client.db.query('SELECT 1')));
    return await fn(clients);
  } finally {
    await Promise.all(
      clients.map(async (client) => {
        await client.queue.close();
        await client.db.close();
      }),
    );
  }
}

/**
 * Runs `step` back to back on every client until the deadline. `step` returns the units it completed;
 * 0 means this client has nothing left to do (a drained queue) and stops early.
 */
async function runUntilDeadline(
  clients: Client[],
  seconds: number,
  step: (client: Client) => Promise<number>,
): Promise<{ count: number; elapsedMs: number }> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const counts = await Promise.all(
    clients.map(async (client) => {
      let done = 0;
      while (performance.now() < deadline) {
        const units = await step(client);
        if (units === 0) break;
        done += units;
      }
      return done;
    }),
  );
  return { count: counts.reduce((a, b) => a + b, 0), elapsedMs: performance.now() - started };
}

function throughput(
  scenario: string,
  clients: number,
  unit: string,
  run: { count: number; elapsedMs: number },
  note = '',
): ThroughputResult {
  const seconds = run.elapsedMs / 1000;
  return { scenario, clients, unit, count: run.count, seconds, perSecond: run.count / seconds, note };
}

// ---------------------------------------------------------------------------------------------- throughput

async function benchSend(ctx: BenchContext, clientCount: number): Promise<ThroughputResult> {
  const queue = await freshQueue(ctx, `bench_send_${clientCount}`);
  return withClients(ctx.config.databaseUrl, clientCount, async (clients) => {
    let seq = 0;
    const run = await runUntilDeadline(clients, ctx.config.seconds, async (client) => {
      await client.queue.send(queue, payload(seq++));
      return 1;
    });
    return throughput('send (notify)', clientCount, 'msg', run);
  });
}

/**
 * The same without NOTIFY. PostgreSQL serializes the commits of all transactions that NOTIFY (async.c holds
 * a global lock until commit is flushed), so notifying sends cannot share a group commit; plain sends can.
 */
async function benchSendWithoutNotify(ctx: BenchContext, clientCount: number): Promise<ThroughputResult> {
  const queue = await freshQueue(ctx, `bench_send_plain_${clientCount}`);
  return withClients(ctx.config.databaseUrl, clientCount, async (clients) => {
    let seq = 0;
    const run = await runUntilDeadline(clients, ctx.config.seconds, async (client) => {
      await client.queue.send(queue, payload(seq++), { notify: false });
      return 1;
    });
    return throughput('send (no notify)', clientCount, 'msg', run);
  });
}

/** Batches of 50 with one NOTIFY per batch: what an enqueuer sending a task's ready steps together gets. */
async function benchSendBatch(ctx: BenchContext, clientCount: number): Promise<ThroughputResult> {
  const queue = await freshQueue(ctx, `bench_send_batch_${clientCount}`);
  return withClients(ctx.config.databaseUrl, clientCount, async (clients) => {
    let seq = 0;
    const run = await runUntilDeadline(clients, ctx.config.seconds, async (client) => {
      const batch = Array.from({ length: SEND_BATCH_SIZE }, () => payload(seq++));
      await client.queue.sendBatch(queue, batch);
      return batch.length;
    });
    return throughput(`send_batch of ${SEND_BATCH_SIZE} (notify)`, clientCount, 'msg', run);
  });
}

/**
 * No pre-fill on purpose: each round trip sends the message it then reads, so the figure is the cost of
 * the whole life of one message. With 8 clients on one queue a client may read a message another sent.
 */
async function benchRoundTrip(ctx: BenchContext, clientCount: number): Promise<ThroughputResult> {
  const queue = await freshQueue(ctx, `bench_roundtrip_${clientCount}`);
  return withClients(ctx.config.databaseUrl, clientCount, async (clients) => {
    let seq = 0;
    let emptyReads = 0;
    const run = await runUntilDeadline(clients, ctx.config.seconds, async (client) => {
      await client.queue.send(queue, payload(seq++));
      // SKIP LOCKED lets a read miss rows a concurrent reader holds for a moment; read again until one comes.
      for (;;) {
        const [message] = await client.queue.receive(queue, {
          limit: 1,
          visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
        });
        if (message !== undefined) {
          await client.queue.ack(queue, message.id);
          return 1;
        }
        emptyReads += 1;
      }
    });
    return throughput(
      'send→read→archive',
      clientCount,
      'round trip',
      run,
      emptyReads > 0 ? `${emptyReads} empty reads` : '',
    );
  });
}

async function prefill(ctx: BenchContext, queue: string, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += PREFILL_CHUNK) {
    const size = Math.min(PREFILL_CHUNK, total - sent);
    const batch = Array.from({ length: size }, (_, index) => payload(sent + index));
    // No notify: nobody listens, and the pre-fill is not what is measured.
    await ctx.adminQueue.sendBatch(queue, batch, { notify: false });
  }
}

async function benchBatchedConsume(ctx: BenchContext, clientCount: number): Promise<ThroughputResult> {
  const queue = await freshQueue(ctx, `bench_batch_${clientCount}`);
  await prefill(ctx, queue, ctx.config.batchPrefill);
  return withClients(ctx.config.databaseUrl, clientCount, async (clients) => {
    let drained = false;
    const run = await runUntilDeadline(clients, ctx.config.seconds, async (client) => {
      const messages = await client.queue.receive(queue, {
        limit: BATCH_RECEIVE_LIMIT,
        visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
      });
      if (messages.length === 0) drained = true;
      // One archive per message, as a worker finishing steps one by one does.
      for (const message of messages) await client.queue.ack(queue, message.id);
      return messages.length;
    });
    const note = `pre-filled ${ctx.config.batchPrefill}${drained ? ', drained before the deadline' : ''}`;
    return throughput(`read ${BATCH_RECEIVE_LIMIT} + archive each`, clientCount, 'msg', run, note);
  });
}

async function runThroughput(ctx: BenchContext): Promise<ThroughputResult[]> {
  const scenarios: [string, (ctx: BenchContext, clients: number) => Promise<ThroughputResult>][] = [
    ['send', benchSend],
    ['send without notify', benchSendWithoutNotify],
    ['send_batch', benchSendBatch],
    ['send→read→archive', benchRoundTrip],
    ['batched read + archive', benchBatchedConsume],
  ];
  const results: ThroughputResult[] = [];
  for (const [name, scenario] of scenarios) {
    for (const clients of CLIENT_COUNTS) {
      progress(`${name}, ${clients} client${clients === 1 ? '' : 's'}, ${ctx.config.seconds} s`);
      results.push(await scenario(ctx, clients));
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------- latency

/**
 * Matches events to message ids. The notification can arrive before `send()` has even returned the id
 * (commit happens before the reply reaches us), so an event is kept until its sender asks for it.
 */
class Arrivals<T> {
  private readonly arrived = new Map<string, T>();
  private readonly waiting = new Map<string, (value: T) => void>();

  record(id: string, value: T): void {
    const waiter = this.waiting.get(id);
    if (waiter === undefined) {
      this.arrived.set(id, value);
      return;
    }
    this.waiting.delete(id);
    waiter(value);
  }

  /** Resolves null when nothing came for `id` within `timeoutMs`. */
  wait(id: string, timeoutMs: number): Promise<T | null> {
    const value = this.arrived.get(id);
    if (value !== undefined) {
      this.arrived.delete(id);
      return Promise.resolve(value);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(id, (arrivedValue) => {
        clearTimeout(timer);
        resolve(arrivedValue);
      });
    });
  }
}

/** The listener side and the sending side have separate pools, as a worker and an orchestrator would. */
interface LatencyRig {
  listenerDb: PostgresDatabase;
  listener: PgmqMessagingProvider;
  senderDb: PostgresDatabase;
  sender: PgmqMessagingProvider;
}

async function withLatencyRig<T>(url: string, fn: (rig: LatencyRig) => Promise<T>): Promise<T> {
  // Two connections on the listener pool: receive/ack and the listener's heartbeat NOTIFY never queue.
  const listenerDb = new PostgresDatabase(url, {
    maxConnections: 2,
    applicationName: 'tasker-bench-listener',
  });
  const senderDb = new PostgresDatabase(url, { maxConnections: 1, applicationName: 'tasker-bench-sender' });
  const rig: LatencyRig = {
    listenerDb,
    listener: new PgmqMessagingProvider(listenerDb),
    senderDb,
    sender: new PgmqMessagingProvider(senderDb),
  };
  try {
    await Promise.all([listenerDb.query('SELECT 1'), senderDb.query('SELECT 1')]);
    return await fn(rig);
  } finally {
    await rig.listener.close();
    await rig.sender.close();
    await Promise.all([listenerDb.close(), senderDb.close()]);
  }
}

/**
 * Sends one message every ~intervalMs (start to start), one at a time, and hands each measured sample's
 * start time and arrival to `onSample`. Waiting for each arrival keeps samples independent of each other.
 */
async function paceSamples<T>(
  ctx: BenchContext,
  sender: PgmqMessagingProvider,
  queue: string,
  arrivals: Arrivals<T>,
  onSample: (startedAt: number, value: T) => void,
): Promise<number> {
  let missed = 0;
  const total = LATENCY_WARMUP_SAMPLES + ctx.config.latencySamples;
  for (let index = 0; index < total; index++) {
    const startedAt = performance.now();
    const id = await sender.send(queue, payload(index));
    const value = await arrivals.wait(id, LATENCY_TIMEOUT_MS);
    if (index >= LATENCY_WARMUP_SAMPLES) {
      if (value === null) missed += 1;
      else onSample(startedAt, value);
    }
    const rest = startedAt + ctx.config.latencyIntervalMs - performance.now();
    if (rest > 0) await sleep(rest);
  }
  return missed;
}

async function benchNotifyLatency(ctx: BenchContext): Promise<LatencyResult> {
  const queue = await freshQueue(ctx, 'bench_latency_notify');
  return withLatencyRig(ctx.config.databaseUrl, async (rig) => {
    const arrivals = new Arrivals<number>();
    const subscription = await rig.listener.subscribe([queue], (signal: QueueSignal) => {
      // Time first: anything done before this line would be counted as wake-up latency.
      const now = performance.now();
      if (signal.kind === 'message_ready') arrivals.record(signal.messageId, now);
    });
    try {
      const samples: number[] = [];
      const missed = await paceSamples(ctx, rig.sender, queue, arrivals, (startedAt, signalledAt) =>
        samples.push(signalledAt - startedAt),
      );
      return summarize('send → signal callback', samples, missed);
    } finally {
      await subscription.close();
    }
  });
}

interface ConsumedAt {
  receivedAt: number;
  ackedAt: number;
}

/** The full wake-up path of a worker: signal → receive → ack, all on the listener's side. */
async function benchWakeupPath(ctx: BenchContext): Promise<LatencyResult[]> {
  const queue = await freshQueue(ctx, 'bench_latency_receive');
  return withLatencyRig(ctx.config.databaseUrl, async (rig) => {
    const arrivals = new Arrivals<ConsumedAt>();
    const failures: string[] = [];
    const consume = async (): Promise<void> => {
      const messages = await rig.listener.receive(queue, {
        limit: 1,
        visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
      });
      for (const message of messages) {
        const receivedAt = performance.now();
        await rig.listener.ack(queue, message.id);
        arrivals.record(message.id, { receivedAt, ackedAt: performance.now() });
      }
    };
    const subscription = await rig.listener.subscribe([queue], (signal: QueueSignal) => {
      if (signal.kind !== 'message_ready') return;
      consume().catch((error: unknown) =>
        failures.push(error instanceof Error ? error.message : String(error)),
      );
    });
    try {
      const received: number[] = [];
      const acked: number[] = [];
      const missed = await paceSamples(ctx, rig.sender, queue, arrivals, (startedAt, at) => {
        received.push(at.receivedAt - startedAt);
        acked.push(at.ackedAt - startedAt);
      });
      if (failures.length > 0)
        progress(`wake-up path: ${failures.length} receive/ack failures, first: ${failures[0]}`);
      return [
        summarize('send → signal → receive returned', received, missed),
        summarize('send → signal → receive → ack done', acked, missed),
      ];
    } finally {
      await subscription.close();
    }
  });
}

async function runLatency(ctx: BenchContext): Promise<LatencyResult[]> {
  const { latencySamples, latencyIntervalMs } = ctx.config;
  progress(`notify latency, ${latencySamples} samples every ~${latencyIntervalMs} ms`);
  const notify = await benchNotifyLatency(ctx);
  progress(`wake-up path latency, ${latencySamples} samples every ~${latencyIntervalMs} ms`);
  const wakeup = await benchWakeupPath(ctx);
  return [notify, ...wakeup];
}

function summarize(scenario: string, samples: readonly number[], missed: number): LatencyResult {
  const { count, p50, p90, p99, max } = distribution(samples);
  return { scenario, samples: count, missed, p50, p90, p99, max };
}

// ---------------------------------------------------------------------------------------------- yardstick

const execFileAsync = promisify(execFile);

async function hasPgbench(): Promise<boolean> {
  try {
    await execFileAsync('pgbench', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** pgbench -N on the same server says how fast plain small transactions go here, to judge the queue figures. */
async function runPgbench(url: string): Promise<number | null> {
  await execFileAsync('pgbench', ['-i', '-s', '1', '-q', url]);
  try {
    const { stdout } = await execFileAsync('pgbench', ['-N', '-c', '8', '-j', '2', '-T', '5', url]);
    const match = /tps = ([\d.]+)/.exec(stdout);
    return match?.[1] === undefined ? null : Number(match[1]);
  } finally {
    // -I d drops the pgbench_* tables again, leaving the bench database as we found it.
    await execFileAsync('pgbench', ['-i', '-I', 'd', url]).catch(() => undefined);
  }
}

async function measureYardstick(config: BenchConfig): Promise<Yardstick> {
  const issueNote = `pgbench -N reaches about ${ISSUE_PGBENCH_TPS.toLocaleString('en-US')} tps on this 2-core machine per the issue`;
  const available = await hasPgbench();
  if (!config.runPgbench || !available) {
    const why = !available ? 'pgbench is not on PATH' : 'set BENCH_PGBENCH=1 to measure it here';
    return { measured: false, tps: null, note: `${issueNote} (${why})` };
  }
  progress('pgbench -i -s 1, then pgbench -N -c 8 -j 2 -T 5');
  const tps = await runPgbench(config.databaseUrl);
  return { measured: true, tps, note: 'pgbench -N -c 8 -j 2 -T 5, measured now on the bench database' };
}

// ---------------------------------------------------------------------------------------------- report

function printHeader(machine: MachineInfo, config: BenchConfig, databaseName: string): void {
  printMachineHeader('Tasker queue benchmark (PgmqMessagingProvider)', machine, databaseName);
  console.log(
    `  settings:   ${config.seconds} s per throughput scenario, ${config.latencySamples} latency samples ` +
      `every ~${config.latencyIntervalMs} ms, batched pre-fill ${config.batchPrefill}`,
  );
  console.log(
    '  clients:    each client is its own PostgresDatabase pool with maxConnections 1 (one backend each)',
  );
  console.log('');
}

function printThroughput(results: readonly ThroughputResult[]): void {
  console.log('Throughput');
  const rows = results.map((r) => [
    r.scenario,
    String(r.clients),
    String(r.count),
    fixed(r.seconds, 2),
    fixed(r.perSecond, 0),
    `${r.unit}/s`,
    // Mean time one client spends per unit: with N clients, N units are in flight at once.
    fixed((r.seconds * 1000 * r.clients) / r.count, 2),
    r.note,
  ]);
  const headers = ['scenario', 'clients', 'count', 'seconds', 'rate', 'unit', 'ms/unit/client', 'note'];
  console.log(formatTable(headers, rows, [false, true, true, true, true, false, true, false]));
  console.log('');
}

function printLatency(results: readonly LatencyResult[]): void {
  console.log('Latency (ms, from just before send())');
  const rows = results.map((r) => [
    r.scenario,
    String(r.samples),
    String(r.missed),
    fixed(r.p50, 2),
    fixed(r.p90, 2),
    fixed(r.p99, 2),
    fixed(r.max, 2),
  ]);
  const headers = ['scenario', 'samples', 'missed', 'p50', 'p90', 'p99', 'max'];
  console.log(formatTable(headers, rows, [false, true, true, true, true, true, true]));
  console.log('');
}

function printYardstick(yardstick: Yardstick): void {
  console.log('Yardstick');
  if (yardstick.measured) console.log(`  ${fixed(yardstick.tps ?? Number.NaN, 0)} tps: ${yardstick.note}`);
  else console.log(`  ${yardstick.note}`);
  console.log('');
}

function printJson(
  machine: MachineInfo,
  config: BenchConfig,
  throughputResults: readonly ThroughputResult[],
  latencyResults: readonly LatencyResult[],
  yardstick: Yardstick,
  totalSeconds: number,
): void {
  const summary = {
    machine,
    config: {
      seconds: config.seconds,
      latencySamples: config.latencySamples,
      latencyIntervalMs: config.latencyIntervalMs,
      batchPrefill: config.batchPrefill,
      clientModel: 'one PostgresDatabase with maxConnections 1 per client',
    },
    throughput: throughputResults.map((r) => ({
      scenario: r.scenario,
      clients: r.clients,
      unit: r.unit,
      count: r.count,
      seconds: round(r.seconds, 3),
      perSecond: round(r.perSecond, 1),
      note: r.note,
    })),
    latencyMs: latencyResults.map((r) => ({
      scenario: r.scenario,
      samples: r.samples,
      missed: r.missed,
      p50: round(r.p50, 3),
      p90: round(r.p90, 3),
      p99: round(r.p99, 3),
      max: round(r.max, 3),
    })),
    pgbench: {
      measured: yardstick.measured,
      tps: yardstick.measured ? round(yardstick.tps ?? Number.NaN, 1) : ISSUE_PGBENCH_TPS,
      source: yardstick.measured ? 'pgbench -N -c 8 -j 2 -T 5' : 'the issue',
    },
    totalSeconds: round(totalSeconds, 1),
  };
  console.log(`BENCH_JSON ${JSON.stringify(summary)}`);
}

// ---------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = performance.now();
  const config = readConfig();
  await ensureDatabaseExists(config.databaseUrl);
  const admin = new PostgresDatabase(config.databaseUrl, {
    maxConnections: 2,
    applicationName: 'tasker-bench-admin',
  });
  const ctx: BenchContext = {
    config,
    admin,
    adminQueue: new PgmqMessagingProvider(admin),
    queues: new Set(),
  };
  try {
    await migrate(admin);
    const machine = await describeMachine(admin);
    printHeader(machine, config, admin.displayName);
    const throughputResults = await runThroughput(ctx);
    const latencyResults = await runLatency(ctx);
    // Drop the queues before pgbench so its run does not share the server with their autovacuum.
    await dropQueues(ctx);
    const yardstick = await measureYardstick(config);
    printThroughput(throughputResults);
    printLatency(latencyResults);
    printYardstick(yardstick);
    printJson(
      machine,
      config,
      throughputResults,
      latencyResults,
      yardstick,
      (performance.now() - startedAt) / 1000,
    );
  } finally {
    await dropQueues(ctx).catch((error: unknown) =>
      progress(`could not drop the bench queues: ${String(error)}`),
    );
    await ctx.adminQueue.close();
    await admin.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
