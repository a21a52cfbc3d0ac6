/**
 * What the benchmarks in bench/ share: knobs from the environment, progress lines, nearest-rank
 * percentiles, the machine header and plain-text tables. Nothing here measures anything.
 */
import os from 'node:os';
import type { Queryable } from '../src/db/database.ts';

// ---------------------------------------------------------------------------------------------- config

/** A positive number from the environment, or `fallback` when the variable is unset or empty. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A comma-separated list of positive whole numbers, e.g. `10,50`. */
export function envIntegerList(name: string, fallback: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...fallback];
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((value) => !Number.isInteger(value) || value <= 0)) {
    throw new Error(`${name} must be positive whole numbers separated by commas, got ${JSON.stringify(raw)}`);
  }
  return values;
}

export function progress(message: string): void {
  // stderr, so stdout holds only the report.
  process.stderr.write(`… ${message}\n`);
}

// ---------------------------------------------------------------------------------------------- statistics

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export interface Distribution {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of unsorted samples; NaN throughout when there are none. */
export function distribution(samples: readonly number[]): Distribution {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

// ---------------------------------------------------------------------------------------------- machine

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  totalMemoryGiB: number;
  platform: string;
  node: string;
  postgres: string;
  /** Per-commit cost dominates single-message figures, so the settings that set it are part of the result. */
  durability: string;
  /** os.loadavg() when the benchmark started: other work on the machine makes the figures noisy. */
  loadAverage: number[];
}

export const loadAverage = (): number[] => os.loadavg().map((value) => Math.round(value * 100) / 100);

export const formatLoadAverage = (load: readonly number[]): string =>
  `${load.map((value) => value.toFixed(2)).join(', ')} (1, 5, 15 min)`;

export async function describeMachine(db: Queryable): Promise<MachineInfo> {
  const { rows } = await db.query<{ server_version: string }>('SHOW server_version');
  const settings = await db.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method') ORDER BY name",
  );
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus.length,
    totalMemoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: rows[0]?.server_version ?? 'unknown',
    durability: settings.rows.map((row) => `${row.name}=${row.setting}`).join(', '),
    loadAverage: loadAverage(),
  };
}

/** The title and the machine lines every benchmark report starts with. */
export function printMachineHeader(title: string, machine: MachineInfo, databaseName: string): void {
  console.log(title);
  console.log(`  cpu:        ${machine.cpuModel}, ${machine.cores} cores`);
  console.log(`  memory:     ${machine.totalMemoryGiB} GiB`);
  console.log(`  platform:   ${machine.platform}`);
  console.log(`  node:       ${machine.node}`);
  console.log(`  postgresql: ${machine.postgres} (${databaseName}); ${machine.durability}`);
  console.log(
    `  load:       ${formatLoadAverage(machine.loadAverage)} at start; above ${machine.cores} (the core ` +
      'count), other work competes for the CPU and the figures are noisy',
  );
}

// ---------------------------------------------------------------------------------------------- output

/** Plain text table: columns padded to their widest cell, numbers right-aligned. */
export function formatTable(
  headers: readonly string[],
  rows: readonly string[][],
  rightAligned: readonly boolean[],
): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? cell.length;
        return rightAligned[column] === true ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

export const fixed = (value: number, digits: number): string =>
  Number.isNaN(value) ? 'n/a' : value.toFixed(digits);

/** For BENCH_JSON: rounded, and null instead of NaN/Infinity (which JSON cannot hold). */
export const round = (value: number, digits: number): number | null =>
  Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : null;

// ---------------------------------------------------------------------------------------------- database

/**
 * Every scenario starts from empty tables and queues: all tasks (and by cascade their steps, transitions
 * and audit rows) go, every queue is purged and its archive emptied, and the queue tables are vacuumed so
 * the dead rows of the scenario before do not slow the next one's reads. Then a checkpoint (needs superuser
 * or pg_checkpoint; skipped with a note otherwise).
 */
export async function resetState(admin: Queryable): Promise<void> {
  await admin.query('TRUNCATE tasker.tasks CASCADE');
  const { rows } = await admin.query<{ queue_name: string; q: string; a: string }>(
    `SELECT queue_name, pgmq.format_table_name(queue_name, 'q') AS q, pgmq.format_table_name(queue_name, 'a') AS a
     FROM pgmq.list_queues()`,
  );
  for (const queue of rows) {
    await admin.query('SELECT pgmq.purge_queue($1)', [queue.queue_name]);
    // Queue names are validated by format_table_name: plain lowercase identifiers, safe to splice.
    await admin.exec(`TRUNCATE pgmq."${queue.a}"`);
    await admin.exec(`VACUUM ANALYZE pgmq."${queue.q}"`);
  }
  // A checkpoint now, so that none starts during the scenario: with max_wal_size at its default a busy run
  // triggers one about every minute, and its final sync held up every commit for up to 1.7 s here, which
  // decided whether a five-second scenario measured the engine or the disk.
  await admin.exec('CHECKPOINT').catch((error: unknown) => {
    process.stderr.write(`… no CHECKPOINT before the scenario (${String(error)}); figures may vary more\n`);
  });
}
