/**
 * The soak's faults, one after another at random gaps from a seeded generator, and the recovery after each:
 * from the end of the fault (the replacement process started, the listeners' backends terminated, the server
 * accepting connections again) until every process's /health/ready answers 200, until the next task
 * completion anywhere, and until a task created right then has completed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import type { ScratchPostgres } from '../../test/helpers/scratchPostgres.ts';
import { label } from './soakCluster.ts';
import type { SoakCluster } from './soakCluster.ts';
import type { LoadGenerator } from './soakLoad.ts';

export const FAULT_KINDS = ['worker-kill', 'orchestrator-kill', 'listener-kill', 'postgres-crash'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRecord {
  kind: FaultKind;
  /** Seconds since the fault loop began. */
  at: number;
  detail: string;
  /** From the fault's start to its end (restart done, server accepting connections). */
  faultMs: number;
  /** From the fault's end; null when not within the recovery bound. */
  readyMs: number | null;
  /** The processes still not ready at the poll before all were (empty: all ready at the first poll). */
  lastReady: string[];
  nextCompletionMs: number | null;
  freshTaskMs: number | null;
}

export interface FaultOptions {
  seconds: number;
  minGapMs: number;
  maxGapMs: number;
  recoveryTimeoutMs: number;
}

interface FaultContext {
  cluster: SoakCluster;
  server: ScratchPostgres;
  /** The bench's own connections (application_name tasker-soak, never terminated by the listener fault). */
  db: PostgresDatabase;
  load: LoadGenerator;
  random: () => number;
  /** Whether the run was interrupted: stop between faults. */
  stopping: () => boolean;
}

/** mulberry32: a small seeded generator, so one seed gives one sequence of faults and gaps. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: () => number, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)] as T;

/**
 * Kinds come from a shuffled bag of all four, refilled when empty: random order, and a short run still sees
 * every kind once before any kind twice.
 */
function kindSequence(random: () => number): () => FaultKind {
  let bag: FaultKind[] = [];
  return () => {
    if (bag.length === 0) {
      bag = [...FAULT_KINDS];
      for (let i = bag.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [bag[i], bag[j]] = [bag[j] as FaultKind, bag[i] as FaultKind];
      }
    }
    return bag.pop() as FaultKind;
  };
}

/** Runs faults until `options.seconds` have passed (a fault begun is finished and measured). */
export async function runFaults(ctx: FaultContext, options: FaultOptions): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  const began = Date.now();
  const nextKind = kindSequence(ctx.random);
  const gap = (): number => options.minGapMs + ctx.random() * (options.maxGapMs - options.minGapMs);
  await sleep(gap());
  while (!ctx.stopping() && Date.now() - began < options.seconds * 1000) {
    const kind = nextKind();
    const at = (Date.now() - began) / 1000;
    const started = Date.now();
    const detail = await inject(ctx, kind);
    const ended = Date.now();
    process.stderr.write(`… ${at.toFixed(1)} s: ${kind} (${detail}), measuring recovery\n`);
    const recovery = await measureRecovery(ctx, ended, options.recoveryTimeoutMs);
    records.push({ kind, at, detail, faultMs: ended - started, ...recovery });
    process.stderr.write(
      `…   ready +${show(recovery.readyMs)} (last: ${recovery.lastReady.join(', ') || '-'}), next completion +${show(recovery.nextCompletionMs)}, fresh task +${show(recovery.freshTaskMs)}\n`,
    );
    if (ctx.stopping()) break;
    await sleep(gap());
  }
  return records;
}

const show = (ms: number | null): string => (ms === null ? 'never' : `${ms} ms`);

async function inject(ctx: FaultContext, kind: FaultKind): Promise<string> {
  switch (kind) {
    case 'worker-kill': {
      const member = pick(ctx.random, ctx.cluster.workers());
      await ctx.cluster.killAndRestart(member);
      return `SIGKILL ${label(member)}`;
    }
    case 'orchestrator-kill': {
      const member = pick(ctx.random, ctx.cluster.orchestrators());
      await ctx.cluster.killAndRestart(member);
      return `SIGKILL ${label(member)}`;
    }
    case 'listener-kill': {
      // The services' LISTEN connections are named "<application name>-listener" (src/db/postgresDatabase.ts).
      const { rows } = await ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (
           SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name LIKE '%listener%' AND pid <> pg_backend_pid()) terminated`,
      );
      return `${rows[0]?.n ?? 0} LISTEN backends terminated`;
    }
    case 'postgres-crash': {
      const downMs = 5_000 + Math.round(ctx.random() * 2_000);
      // Both pg_ctl calls are synchronous: the bench's event loop (load included) stands still while they run.
      ctx.server.crash();
      await sleep(downMs);
      ctx.server.start();
      return `down ${(downMs / 1000).toFixed(1)} s`;
    }
  }
}

async function measureRecovery(
  ctx: FaultContext,
  faultEnd: number,
  timeoutMs: number,
): Promise<Pick<FaultRecord, 'readyMs' | 'lastReady' | 'nextCompletionMs' | 'freshTaskMs'>> {
  const deadline = faultEnd + timeoutMs;
  let lastReady: string[] = [];
  const [readyMs, nextCompletionMs, freshTaskMs] = await Promise.all([
    until(deadline, 100, async () => {
      const waiting = await ctx.cluster.notReady();
      if (waiting.length > 0) lastReady = waiting;
      return waiting.length === 0 ? Date.now() - faultEnd : null;
    }),
    // The first task transition to complete committed after the fault's end, timed by the database's clock
    // (the same host's clock as Date.now()).
    until(deadline, 100, async () => {
      const { rows } = await ctx.db.query<{ ms: number | null }>(
        `SELECT (extract(epoch FROM min(created_at)) * 1000 - $1)::float8 AS ms FROM tasker.task_transitions
          WHERE to_state = 'complete' AND created_at > to_timestamp($1 / 1000.0)`,
        [faultEnd],
      );
      const ms = rows[0]?.ms;
      return ms === null || ms === undefined ? null : Math.round(ms);
    }),
    (async () => {
      const uuid = await ctx.load.createOne();
      if (uuid === undefined) return null;
      return until(deadline, 50, async () => {
        const { rows } = await ctx.db.query<{ current_state: string }>(
          'SELECT current_state FROM tasker.tasks WHERE task_uuid = $1',
          [uuid],
        );
        return rows[0]?.current_state === 'complete' ? Date.now() - faultEnd : null;
      });
    })(),
  ]);
  return { readyMs, lastReady, nextCompletionMs, freshTaskMs };
}

/** Calls `check` every `everyMs` until it answers a number or `deadline` passes (then null); errors count as not yet. */
async function until(
  deadline: number,
  everyMs: number,
  check: () => Promise<number | null>,
): Promise<number | null> {
  while (Date.now() < deadline) {
    const value = await check().catch(() => null);
    if (value !== null) return value;
    await sleep(everyMs);
  }
  return null;
}
