/**
 * Soak under faults: a mixed cluster of real `tasker` processes (orchestrators Hybrid and EventDrivenOnly,
 * workers Hybrid, EventDrivenOnly and PollingOnly) on a PostgreSQL server of its own, a steady load of example
 * workflows through the REST API, and for `--seconds` a fault at random gaps: a worker or an orchestrator
 * SIGKILLed and restarted, every LISTEN backend terminated, or PostgreSQL crashed for 5–7 s. It prints what was
 * lost, duplicated or wrong, the error-level log lines, and the recovery time after each fault; it exits 1 if
 * any task was lost, any result applied twice or any value wrong. bench/README.md explains the figures.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { startScratchPostgres } from '../../test/helpers/scratchPostgres.ts';
import type { ScratchPostgres } from '../../test/helpers/scratchPostgres.ts';
import { describeMachine, formatTable, printMachineHeader, progress } from '../benchSupport.ts';
import { drain, verify } from './soakChecks.ts';
import type { Verdict } from './soakChecks.ts';
import { SoakCluster, label } from './soakCluster.ts';
import { FAULT_KINDS, runFaults, seededRandom } from './soakFaults.ts';
import type { FaultRecord } from './soakFaults.ts';
import type { LogCounts } from './soakCluster.ts';
import { LoadGenerator } from './soakLoad.ts';

const USAGE = `npm run bench:soak -- [--seconds 180] [--rate 20] [--seed N] [--min-gap 5] [--max-gap 15]
                          [--recovery-seconds 90] [--drain-seconds 120]`;

interface Options {
  seconds: number;
  rate: number;
  seed: number;
  minGapSeconds: number;
  maxGapSeconds: number;
  recoverySeconds: number;
  drainSeconds: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '180' },
      rate: { type: 'string', default: '20' },
      seed: { type: 'string' },
      'min-gap': { type: 'string', default: '5' },
      'max-gap': { type: 'string', default: '15' },
      'recovery-seconds': { type: 'string', default: '90' },
      'drain-seconds': { type: 'string', default: '120' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const positive = (name: string, raw: string): number => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`--${name} must be a positive number, got "${raw}"\n${USAGE}`);
    return value;
  };
  const options = {
    seconds: positive('seconds', values.seconds),
    rate: positive('rate', values.rate),
    seed:
      values.seed === undefined
        ? Math.floor(Math.random() * 1_000_000)
        : Math.trunc(positive('seed', values.seed)),
    minGapSeconds: positive('min-gap', values['min-gap']),
    maxGapSeconds: positive('max-gap', values['max-gap']),
    recoverySeconds: positive('recovery-seconds', values['recovery-seconds']),
    drainSeconds: positive('drain-seconds', values['drain-seconds']),
  };
  if (options.maxGapSeconds < options.minGapSeconds) throw new Error('--max-gap must be at least --min-gap');
  return options;
}

/**
 * The shipped production settings (breakers included), with API auth off (the bench has no key source) and
 * pools of 10: five processes on the scratch server's 100 connections.
 */
const CONFIG = `
[database]
max_connections = 10
min_connections = 2
`;

interface Resources {
  server?: ScratchPostgres;
  cluster?: SoakCluster;
  db?: PostgresDatabase;
  configDir?: string;
}

const resources: Resources = {};
let interrupted = false;

/** Ctrl-C or SIGTERM: kill every child at once, remove the scratch server, exit. Synchronous on purpose. */
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  process.stderr.write(`\n… ${signal}: killing the cluster and removing the scratch server\n`);
  resources.cluster?.killAll();
  resources.server?.destroy();
  if (resources.configDir !== undefined) rmSync(resources.configDir, { recursive: true, force: true });
  process.exit(130);
}

async function main(): Promise<number> {
  const options = parseOptions();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  progress('initdb and start a scratch PostgreSQL server');
  const server = await startScratchPostgres();
  resources.server = server;
  const admin = new PostgresDatabase(server.url('postgres'), { applicationName: 'tasker-soak' });
  await admin.query('CREATE DATABASE tasker_soak');
  await admin.close();
  const databaseUrl = server.url('tasker_soak');
  const db = new PostgresDatabase(databaseUrl, {
    maxConnections: 3,
    applicationName: 'tasker-soak',
    connectionTimeoutMs: 2_000,
    statementTimeoutMs: 30_000,
  });
  resources.db = db;
  await migrate(db);

  const configDir = mkdtempSync(join(tmpdir(), 'tasker-soak-'));
  resources.configDir = configDir;
  writeFileSync(join(configDir, 'tasker.toml'), CONFIG);
  const cluster = new SoakCluster(databaseUrl, {
    TASKER_ENV: 'production',
    TASKER_AUTH_ENABLED: 'false',
    // info: the start helper waits for the "service started" line.
    LOG_LEVEL: 'info',
    TASKER_CONFIG_PATH: join(configDir, 'tasker.toml'),
  });
  resources.cluster = cluster;
  progress('start 2 orchestrators and 3 workers');
  await cluster.start();

  const machine = await describeMachine(db);
  printMachineHeader(
    'Tasker soak under faults (real tasker processes, example workflows)',
    machine,
    db.displayName,
  );
  console.log(
    `  run:        ${options.seconds} s of faults, seed ${options.seed}, ${options.rate} tasks/s, gaps ` +
      `${options.minGapSeconds}–${options.maxGapSeconds} s; processes: ${cluster.members.map(label).join(', ')}`,
  );

  const load = new LoadGenerator(cluster, options.rate);
  load.start();
  const loadStarted = Date.now();
  const faults = await runFaults(
    { cluster, server, db, load, random: seededRandom(options.seed), stopping: () => interrupted },
    {
      seconds: options.seconds,
      minGapMs: options.minGapSeconds * 1000,
      maxGapMs: options.maxGapSeconds * 1000,
      recoveryTimeoutMs: options.recoverySeconds * 1000,
    },
  );
  progress('stop the load, wait for every accepted task to finish');
  await load.stop();
  const loadSeconds = (Date.now() - loadStarted) / 1000;
  const uuids = [...new Set(load.accepted.map((t) => t.taskUuid))];
  const drainStarted = Date.now();
  const unfinished = await drain(db, uuids, options.drainSeconds * 1000);
  const drainSeconds = (Date.now() - drainStarted) / 1000;
  progress(`${unfinished} unfinished after ${drainSeconds.toFixed(1)} s; checking results and histories`);
  const verdict = await verify(db, load.accepted);
  const exits = await cluster.stop();
  const logs = cluster.logCounts();

  printTasks(verdict, load, loadSeconds, drainSeconds);
  printLogs(logs, exits);
  printFaults(faults);
  const bad =
    verdict.lost.length +
    verdict.wrong.length +
    verdict.stepsTerminalTwice +
    verdict.tasksTerminalTwice +
    verdict.resultsStoredTwice;
  console.log(
    `\nVERDICT ${bad === 0 ? 'ok' : 'FAILED'}: ${verdict.lost.length} lost, ` +
      `${verdict.stepsTerminalTwice + verdict.tasksTerminalTwice + verdict.resultsStoredTwice} duplicated, ` +
      `${verdict.wrong.length} wrong`,
  );
  return bad === 0 ? 0 : 1;
}

const first = (items: readonly string[], n = 5): string =>
  items.length === 0 ? '' : `  e.g. ${items.slice(0, n).join('; ')}`;

function printTasks(verdict: Verdict, load: LoadGenerator, loadSeconds: number, drainSeconds: number): void {
  console.log('\nTasks');
  const rows: Array<[string, number, string]> = [
    ['accepted (201/200)', verdict.accepted, `over ${loadSeconds.toFixed(0)} s of load`],
    ['completed', verdict.completed, `drain took ${drainSeconds.toFixed(1)} s`],
    ['failed (error state)', verdict.failed.length, first(verdict.failed)],
    ['lost (never finished)', verdict.lost.length, first(verdict.lost)],
    ['wrong results', verdict.wrong.length, first(verdict.wrong)],
    ['creations given up', load.gaveUp, 'no 201/200 within 45 s, both orchestrators tried'],
    ['creations rejected (4xx)', load.rejected, ''],
    ['creations failed over', load.failedOver, 'accepted by the other orchestrator, same Idempotency-Key'],
    ['ticks skipped', load.skipped, '400 creations were in flight'],
    ['tasks without acknowledgement', verdict.unacknowledged, 'soak tasks whose creation got no answer'],
  ];
  console.log(
    formatTable(
      ['', 'count', 'note'],
      rows.map(([a, b, c]) => [a, String(b), c]),
      [false, true, false],
    ),
  );
  console.log('\nExactly once');
  const once: Array<[string, number, string]> = [
    ['steps terminal twice', verdict.stepsTerminalTwice, ''],
    ['tasks terminal twice', verdict.tasksTerminalTwice, ''],
    ['results stored twice', verdict.resultsStoredTwice, 'for one (step, attempt)'],
    ['invalid histories', verdict.invalidHistories.length, first(verdict.invalidHistories, 3)],
    ['steps re-run', verdict.stepsRerun, 'attempts > 1: at-least-once execution after a kill'],
  ];
  console.log(
    formatTable(
      ['', 'count', 'note'],
      once.map(([a, b, c]) => [a, String(b), c]),
      [false, true, false],
    ),
  );
}

function printLogs(logs: LogCounts, exits: ReadonlyArray<{ member: string; code: number | string }>): void {
  console.log(
    `\nLogs: ${logs.errors} error-level lines, ${logs.warnings} warn-level lines (every process, killed ones included)`,
  );
  for (const sample of logs.errorSamples) console.log(`  error: ${sample}`);
  for (const [message, n] of logs.commonWarnings) console.log(`  warn x${n}  ${message}`);
  const unclean = exits.filter((e) => e.code !== 0);
  console.log(
    `Stop: ${unclean.length === 0 ? 'every process exited 0 on SIGTERM' : unclean.map((e) => `${e.member} exited ${e.code}`).join(', ')}`,
  );
}

const ms = (value: number | null): string => (value === null ? 'never' : String(value));

function stats(values: ReadonlyArray<number | null>): string[] {
  const seen = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  const never = values.length - seen.length;
  if (seen.length === 0) return ['-', '-', '-', never > 0 ? `${never} never` : ''];
  const median =
    seen.length % 2 === 1
      ? (seen[(seen.length - 1) / 2] as number)
      : Math.round(((seen[seen.length / 2 - 1] as number) + (seen[seen.length / 2] as number)) / 2);
  return [String(seen[0]), String(median), String(seen.at(-1)), never > 0 ? `${never} never` : ''];
}

function printFaults(faults: readonly FaultRecord[]): void {
  console.log('\nFaults (ms after the fault ended: restart done, or the server accepting connections)');
  console.log(
    formatTable(
      ['at s', 'fault', 'detail', 'fault ms', 'ready', 'next completion', 'fresh task', 'last ready'],
      faults.map((f) => [
        f.at.toFixed(1),
        f.kind,
        f.detail,
        String(f.faultMs),
        ms(f.readyMs),
        ms(f.nextCompletionMs),
        ms(f.freshTaskMs),
        f.lastReady.join(', '),
      ]),
      [true, false, false, true, true, true, true, false],
    ),
  );
  console.log('\nRecovery per fault kind, ms: min / median / max');
  const rows = FAULT_KINDS.map((kind) => {
    const of = faults.filter((f) => f.kind === kind);
    const cell = (values: ReadonlyArray<number | null>): string => {
      const [min, median, max, never] = stats(values);
      return `${min} / ${median} / ${max}${never === '' ? '' : ` (${never})`}`;
    };
    return [
      kind,
      String(of.length),
      cell(of.map((f) => f.readyMs)),
      cell(of.map((f) => f.nextCompletionMs)),
      cell(of.map((f) => f.freshTaskMs)),
    ];
  });
  console.log(
    formatTable(['fault', 'n', 'ready', 'next completion', 'fresh task'], rows, [
      false,
      true,
      true,
      true,
      true,
    ]),
  );
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error(error);
} finally {
  if (!interrupted) {
    await resources.db?.close().catch(() => undefined);
    // stop() already emptied the member list on the normal path; after an error, whoever is left is killed.
    resources.cluster?.killAll();
    resources.server?.destroy();
    if (resources.configDir !== undefined) rmSync(resources.configDir, { recursive: true, force: true });
  }
}
process.exit(exitCode);
