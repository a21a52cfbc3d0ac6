/**
 * graphile-worker on this machine, with the engine benchmark's workloads (npm run bench:peers): the issue
 * states tasker's latency and throughput targets against graphile-worker's figures on the reference
 * machine (6.8 ms for a 4-job chain, 865 one-step jobs/s), and machines differ. Run next to
 * `npm run bench:engine`, this tells how fast this machine is today.
 *
 *   4-job chain: job n's task adds job n+1 (helpers.addJob, in the worker's own transaction); latency from
 *   just before quickAddJob(job 1) to graphile-worker's `job:complete` event for job 4 (its completion
 *   committed). 200 runs one at a time after 10 warm-up runs; LISTEN/NOTIFY wake-ups, worker in this process.
 *   5,000 one-step jobs: added together in one addJobs call, then the time until every job has completed
 *   (concurrency 10 and 50, the engine bench's capacities).
 *   500 diamonds (A → B, C → D), concurrency 50: every A added in one add_jobs call; A adds B and C; B and C
 *   each count themselves done in a join table (one UPDATE ... RETURNING, so exactly one of them sees 2) and
 *   that one adds D — the join a graphile-worker user writes by hand. Diamonds/s from the first add to the
 *   last D completed, and each diamond's latency (its A added → its D completed).
 *
 * Installed into bench/peers/node_modules (its own package.json, not tasker's dependencies). Prints figures
 * only, and a last line `BENCH_JSON {...}`. PEER_DATABASE_URL picks the server (a database `peer_bench` is
 * dropped and created on it), PEER_CHAIN_RUNS, PEER_JOBS and PEER_DIAMONDS the sizes.
 */
import console from 'node:console';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { URL } from 'node:url';
import { Logger, quickAddJob, run } from 'graphile-worker';
import pg from 'pg';

const serverUrl = process.env.PEER_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
const chainRuns = Number(process.env.PEER_CHAIN_RUNS ?? 200);
const jobCount = Number(process.env.PEER_JOBS ?? 5000);
const diamondCount = Number(process.env.PEER_DIAMONDS ?? 500);
const databaseUrl = (() => {
  const url = new URL(serverUrl);
  url.pathname = '/peer_bench';
  return url.toString();
})();

const nearestRank = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];

async function recreateDatabase() {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS peer_bench WITH (FORCE)');
  await admin.query('CREATE DATABASE peer_bench');
  await admin.end();
}

/** graphile-worker's runner with the chain task and a no-op task; quiet logging (its per-job lines cost CPU). */
async function startRunner(concurrency, onComplete) {
  const runner = await run({
    connectionString: databaseUrl,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: new Logger(() => () => {}),
    taskList: {
      chain: async (payload, helpers) => {
        if (payload.n < 4) await helpers.addJob('chain', { id: payload.id, n: payload.n + 1 });
      },
      noop: async () => {},
      diamond_a: async (payload, helpers) => {
        await helpers.addJob('diamond_bc', { id: payload.id });
        await helpers.addJob('diamond_bc', { id: payload.id });
      },
      diamond_bc: async (payload, helpers) => {
        const { rows } = await helpers.withPgClient((client) =>
          client.query('UPDATE diamond_join SET done = done + 1 WHERE id = $1 RETURNING done', [payload.id]),
        );
        if (rows[0]?.done === 2) await helpers.addJob('diamond_d', { id: payload.id });
      },
      diamond_d: async () => {},
    },
  });
  runner.events.on('job:complete', ({ job, error }) => {
    if (error === undefined || error === null) onComplete(job);
  });
  return runner;
}

async function chainLatency() {
  const waiters = new Map();
  const runner = await startRunner(10, (job) => {
    if (job.task_identifier === 'chain' && job.payload.n === 4) waiters.get(job.payload.id)?.();
  });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const samples = [];
  for (let i = 0; i < chainRuns + 10; i++) {
    const id = `run${i}`;
    const done = new Promise((resolve) => waiters.set(id, resolve));
    const started = performance.now();
    await quickAddJob({ pgPool: pool }, 'chain', { id, n: 1 });
    await done;
    waiters.delete(id);
    if (i >= 10) samples.push(performance.now() - started);
  }
  await runner.stop();
  await pool.end();
  samples.sort((a, b) => a - b);
  return { p50: nearestRank(samples, 0.5), p95: nearestRank(samples, 0.95), p99: nearestRank(samples, 0.99) };
}

/** Jobs 1..count of the task, payload {id: n}, in one graphile_worker.add_jobs call: "submitted at once". */
async function addJobsAtOnce(pool, identifier, count) {
  await pool.query(
    `SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
       SELECT json_populate_record(NULL::graphile_worker.job_spec, json_build_object('identifier', $1::text, 'payload', json_build_object('id', g)))
       FROM generate_series(1, $2::int) AS g))`,
    [identifier, count],
  );
}

async function oneStepThroughput(concurrency) {
  let completed = 0;
  let allDone;
  const finished = new Promise((resolve) => (allDone = resolve));
  const runner = await startRunner(concurrency, (job) => {
    if (job.task_identifier === 'noop' && ++completed === jobCount) allDone();
  });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  const started = performance.now();
  await addJobsAtOnce(pool, 'noop', jobCount);
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await runner.stop();
  await pool.end();
  return { concurrency, jobs: jobCount, seconds, perSecond: jobCount / seconds };
}

async function diamondThroughput(concurrency) {
  const finishedAt = new Map();
  let allDone;
  const finished = new Promise((resolve) => (allDone = resolve));
  const runner = await startRunner(concurrency, (job) => {
    if (job.task_identifier !== 'diamond_d') return;
    finishedAt.set(job.payload.id, performance.now());
    if (finishedAt.size === diamondCount) allDone();
  });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  await pool.query('CREATE TABLE IF NOT EXISTS diamond_join (id integer PRIMARY KEY, done integer NOT NULL)');
  await pool.query('TRUNCATE diamond_join');
  await pool.query('INSERT INTO diamond_join SELECT g, 0 FROM generate_series(1, $1::int) AS g', [
    diamondCount,
  ]);
  const started = performance.now();
  await addJobsAtOnce(pool, 'diamond_a', diamondCount);
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await runner.stop();
  await pool.end();
  // Every A was added by the one add_jobs call at `started`: a diamond's latency runs from there.
  const latencies = [...finishedAt.values()].map((at) => at - started).sort((a, b) => a - b);
  return {
    concurrency,
    diamonds: diamondCount,
    seconds,
    perSecond: diamondCount / seconds,
    latencyMs: { p50: nearestRank(latencies, 0.5), p99: nearestRank(latencies, 0.99) },
  };
}

await recreateDatabase();
const cpu = os.cpus()[0]?.model ?? 'unknown';
console.log(
  `graphile-worker 0.16.6 on this machine (${cpu}, ${os.cpus().length} cores, node ${process.version})`,
);
console.log(
  `  database: ${databaseUrl.replace(/:[^:@/]*@/, ':***@')}; load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')} at start`,
);
const chain = await chainLatency();
console.log(
  `4-job chain, ${chainRuns} runs one at a time: p50 ${chain.p50.toFixed(2)} ms, p95 ${chain.p95.toFixed(2)} ms, p99 ${chain.p99.toFixed(2)} ms (reference machine: 6.8 ms p50)`,
);
const throughput = [];
for (const concurrency of [10, 50]) {
  const result = await oneStepThroughput(concurrency);
  throughput.push(result);
  console.log(
    `${result.jobs} one-step jobs at once, concurrency ${concurrency}: ${result.perSecond.toFixed(0)} jobs/s (${result.seconds.toFixed(2)} s; reference machine: 865/s)`,
  );
}
const diamonds = await diamondThroughput(50);
console.log(
  `${diamonds.diamonds} diamonds at once, concurrency 50: ${diamonds.perSecond.toFixed(0)} diamonds/s (${diamonds.seconds.toFixed(2)} s; latency p50 ${diamonds.latencyMs.p50.toFixed(1)} ms, p99 ${diamonds.latencyMs.p99.toFixed(1)} ms; reference machine: 225/s)`,
);
console.log(
  `BENCH_JSON ${JSON.stringify({ peer: 'graphile-worker', version: '0.16.6', chain, throughput, diamonds })}`,
);
