/**
 * REST benchmark: Tasker as its users see it. A real `tasker orchestration` process and a real `tasker worker`
 * process (no-op handlers), and this process as the client, talking HTTP only: tasks are created with
 * `POST /v1/tasks` and their completion is awaited with `GET /v1/tasks/{uuid}?wait=N`, which answers as soon
 * as the task is finished (a NOTIFY wakes the server). Prints figures only; nothing passes or fails.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { loadConfig } from '../../src/config/loadConfig.ts';
import type { Queryable } from '../../src/db/database.ts';
import { ensureDatabaseExists } from '../../src/db/createDatabase.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { TERMINAL_TASK_STATES } from '../../src/domain/state/taskStates.ts';
import { createTask } from '../../src/orchestration/taskInitializer.ts';
import { TemplateCache } from '../../src/orchestration/templateCache.ts';
import { openServiceDatabase } from '../../src/services/openServiceDatabase.ts';
import { templateCacheOptions } from '../../src/services/serviceOptions.ts';
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
  round,
} from '../benchSupport.ts';
import type { Distribution } from '../benchSupport.ts';
import { BENCH_TEMPLATE_FILES, DIAMOND, LINEAR, ONE_STEP, taskRequest } from '../engine/benchTemplates.ts';
import type { BenchWorkflow } from '../engine/benchTemplates.ts';

const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/tasker_bench_rest';
const HANDLERS = fileURLToPath(new URL('./benchHandlers.ts', import.meta.url));
const TARGETS = { linearP50Ms: 10, createP50Ms: 3 };

const config = {
  databaseUrl: process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL,
  creates: Math.round(envNumber('BENCH_REST_CREATES', 500)),
  linearRuns: Math.round(envNumber('BENCH_LINEAR_RUNS', 200)),
  warmup: Math.round(envNumber('BENCH_LINEAR_WARMUP', 20)),
  diamonds: Math.round(envNumber('BENCH_DIAMONDS', 500)),
  oneStepTasks: Math.round(envNumber('BENCH_ONE_STEP_TASKS', 5000)),
  concurrency: Math.round(envNumber('BENCH_CREATE_CONCURRENCY', 16)),
  creationTasks: Math.round(envNumber('BENCH_CREATION_TASKS', 2000)),
};

interface Task {
  task_uuid: string;
  status: string;
}

/**
 * Node's own HTTP client with keep-alive connections: what a service calling Tasker would use. (Node 20's
 * global fetch costs about a millisecond more per request on this machine, which would be measured as the
 * server's.)
 */
const agent = new http.Agent({ keepAlive: true });

function call<T>(
  method: string,
  url: string,
  body?: unknown,
  credentials: Record<string, string> = {},
): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method,
        agent,
        headers:
          payload === undefined
            ? credentials
            : {
                ...credentials,
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(payload),
              },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = response.statusCode ?? 0;
          if (status < 200 || status >= 300) reject(new Error(`${method} ${url} → ${status} ${text}`));
          else resolve(JSON.parse(text) as T);
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

const create = (
  api: string,
  workflow: BenchWorkflow,
  seq: number,
  credentials: Record<string, string> = {},
): Promise<Task> => call<Task>('POST', `${api}/v1/tasks`, taskRequest(workflow, seq), credentials);

const awaitFinished = (
  api: string,
  taskUuid: string,
  credentials: Record<string, string> = {},
): Promise<Task> => call<Task>('GET', `${api}/v1/tasks/${taskUuid}?wait=60`, undefined, credentials);

/** Runs `fn(i)` for i in [0, count) with at most `limit` in flight. */
async function pool(count: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

async function createLatency(api: string): Promise<Distribution> {
  const [latency] = await interleavedCreateLatency([{ api, credentials: {} }]);
  return latency as Distribution;
}

/**
 * POST /v1/tasks one at a time, taking turns between `legs` (a server and the credentials to send): load
 * from other work on the machine then falls on every leg alike, so their difference is the legs' own.
 */
async function interleavedCreateLatency(
  legs: readonly { api: string; credentials: Record<string, string> }[],
): Promise<Distribution[]> {
  progress(`POST /v1/tasks × ${config.creates} per leg (${legs.length} taking turns), one at a time`);
  const samples = legs.map((): number[] => []);
  const uuids = legs.map((): string[] => []);
  for (let i = 0; i < config.creates + config.warmup; i++) {
    // The order turns each round: no leg always follows another (the first request on a process that has
    // been waiting costs more than the next one).
    for (let turn = 0; turn < legs.length; turn++) {
      const leg = (i + turn) % legs.length;
      const { api, credentials } = legs[leg] as (typeof legs)[number];
      const started = performance.now();
      const task = await create(api, ONE_STEP, i * legs.length + leg, credentials);
      if (i >= config.warmup) samples[leg]?.push(performance.now() - started);
      uuids[leg]?.push(task.task_uuid);
    }
  }
  for (const [leg, { api, credentials }] of legs.entries())
    for (const uuid of uuids[leg] ?? []) await awaitFinished(api, uuid, credentials);
  return samples.map((leg) => distribution(leg));
}

/**
 * Linear 4-step runs one at a time, observed as a client would: `oneRequest` creates and awaits the result
 * in one `POST /v1/tasks?wait=60`; otherwise `POST` then `GET /v1/tasks/{uuid}?wait=60`.
 */
async function linear(api: string, oneRequest: boolean): Promise<{ latency: Distribution; failed: number }> {
  progress(
    `linear 4-step (${oneRequest ? 'POST ?wait' : 'POST, then GET ?wait'}): ${config.linearRuns} runs one at a time (+${config.warmup} warm-up)`,
  );
  const samples: number[] = [];
  let failed = 0;
  for (let i = 0; i < config.linearRuns + config.warmup; i++) {
    const started = performance.now();
    const done = oneRequest
      ? await call<Task>('POST', `${api}/v1/tasks?wait=60`, taskRequest(LINEAR, i))
      : await awaitFinished(api, (await create(api, LINEAR, i)).task_uuid);
    if (i < config.warmup) continue;
    if (done.status !== 'complete') failed++;
    samples.push(performance.now() - started);
  }
  return { latency: distribution(samples), failed };
}

interface BulkResult {
  tasks: number;
  failed: number;
  seconds: number;
  tasksPerSecond: number;
  latency: Distribution;
}

/** Submits `count` tasks at once (`concurrency` creators) and awaits each one's completion. */
async function bulk(api: string, workflow: BenchWorkflow, count: number): Promise<BulkResult> {
  progress(`${count} × ${workflow.name} submitted at once (${config.concurrency} concurrent creators)`);
  const latencies: number[] = [];
  let failed = 0;
  const waits: Promise<void>[] = [];
  const started = performance.now();
  await pool(count, config.concurrency, async (i) => {
    const t0 = performance.now();
    const task = await create(api, workflow, i);
    waits.push(
      awaitFinished(api, task.task_uuid).then((done) => {
        latencies.push(performance.now() - t0);
        if (done.status !== 'complete') failed++;
      }),
    );
  });
  await Promise.all(waits);
  const seconds = (performance.now() - started) / 1000;
  return { tasks: count, failed, seconds, tasksPerSecond: count / seconds, latency: distribution(latencies) };
}

interface CreationResult {
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  /** One creation: POST sent → 201 received, or createTask() called → returned. */
  latency: Distribution;
}

/**
 * Creation only: `count` one-step tasks created by `config.concurrency` callers, each starting its next
 * creation when the last one returned; after as many untimed ones first (pool connections opened, statements
 * prepared, keep-alive sockets up). The worker runs the tasks meanwhile, as it would in production.
 */
async function creationThroughput(label: string, createOne: (seq: number) => Promise<unknown>) {
  const warmup = config.concurrency * 4;
  progress(`${label}: ${config.creationTasks} one-step tasks, ${config.concurrency} concurrent callers`);
  await pool(warmup, config.concurrency, async (i) => {
    await createOne(i);
  });
  const samples: number[] = [];
  const started = performance.now();
  await pool(config.creationTasks, config.concurrency, async (i) => {
    const t0 = performance.now();
    await createOne(warmup + i);
    samples.push(performance.now() - t0);
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    tasks: config.creationTasks,
    seconds,
    tasksPerSecond: config.creationTasks / seconds,
    latency: distribution(samples),
  } satisfies CreationResult;
}

/** Waits (untimed) until the worker has finished every task, so one leg's work does not load the next. */
async function drain(admin: Queryable): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const { rows } = await admin.query<{ left: number }>(
      'SELECT count(*)::int AS left FROM tasker.tasks WHERE current_state::text <> ALL($1)',
      [TERMINAL_TASK_STATES],
    );
    if ((rows[0]?.left ?? 0) === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0]?.left} tasks still unfinished after 300 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const ms = (value: number): string => fixed(value, 2);

interface AuthSetup {
  /** TASKER_CONFIG_ROOT (the shipped configuration plus an API key from BENCH_API_KEY) and the key path. */
  env: Record<string, string>;
  bearer: Record<string, string>;
  apiKey: Record<string, string>;
}

/**
 * What the auth-on orchestrator needs: a static RS256 key (the production configuration reads its path from
 * TASKER_JWT_PUBLIC_KEY_PATH), one API key, and a token and a key granting tasks:create.
 */
async function authSetup(folder: string): Promise<AuthSetup> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(folder, 'public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  const configRoot = join(folder, 'config');
  cpSync(fileURLToPath(new URL('../../config/tasker/', import.meta.url)), join(configRoot, 'tasker'), {
    recursive: true,
  });
  writeFileSync(
    join(configRoot, 'tasker', 'environments', 'production', 'zz-bench-auth.toml'),
    '[[orchestration.web.auth.api_keys]]\nkey_env = "BENCH_API_KEY"\npermissions = ["tasks:*"]\n',
  );
  const key = randomBytes(32).toString('hex');
  const token = await new SignJWT({ permissions: ['tasks:create', 'tasks:read'] })
    .setProtectedHeader({ alg: 'RS256' })
    .setSubject('bench')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(privateKey);
  return {
    env: {
      TASKER_CONFIG_ROOT: configRoot,
      TASKER_JWT_PUBLIC_KEY_PATH: join(folder, 'public.pem'),
      BENCH_API_KEY: key,
    },
    bearer: { authorization: `Bearer ${token}` },
    apiKey: { 'x-api-key': key },
  };
}

async function main(): Promise<void> {
  await ensureDatabaseExists(config.databaseUrl);
  const admin = new PostgresDatabase(config.databaseUrl, { maxConnections: 2 });
  const templates = mkdtempSync(join(tmpdir(), 'tasker-rest-bench-'));
  const authFolder = mkdtempSync(join(tmpdir(), 'tasker-rest-bench-auth-'));
  const processes: TaskerProcess[] = [];
  try {
    await migrate(admin);
    for (const [file, text] of Object.entries(BENCH_TEMPLATE_FILES))
      writeFileSync(join(templates, file), text);
    const machine = await describeMachine(admin);
    // Production configuration with auth off (explicitly: production turns it on); the auth legs below start
    // an orchestrator of their own with it on.
    const env = { TASKER_ENV: 'production', LOG_LEVEL: 'info', TASKER_AUTH_ENABLED: 'false' };
    progress('starting tasker worker and tasker orchestration (separate processes)');
    const worker = await startWorkerProcess({
      databaseUrl: config.databaseUrl,
      env,
      handlers: HANDLERS,
      templates,
    });
    processes.push(worker);
    const orchestration = await startOrchestrationProcess({ databaseUrl: config.databaseUrl, env });
    processes.push(orchestration);
    const api = orchestration.url;

    // Each scenario starts from empty tables and vacuumed queues, as in the engine bench, and with fresh
    // connections: the reset (a CHECKPOINT among others) can outlast the server's keep-alive timeout, and a
    // request sent on a socket the server is closing fails with "socket hang up".
    const reset = async (): Promise<void> => {
      await resetState(admin);
      agent.destroy();
    };
    await reset();
    const creates = await createLatency(api);
    await reset();
    const chainOneRequest = await linear(api, true);
    await reset();
    const chain = await linear(api, false);
    await reset();
    const diamonds = await bulk(api, DIAMOND, config.diamonds);
    await reset();
    const oneStep = await bulk(api, ONE_STEP, config.oneStepTasks);

    // Creation throughput, HTTP against in-process. The library leg is what the route runs for each POST
    // (createTask with the orchestration service's pool size and template cache, both from the same
    // production configuration), called by this process; so the ratio is what HTTP, fastify, the 201 view
    // and its task read add to a creation.
    await reset();
    const httpCreation = await creationThroughput('POST /v1/tasks', (seq) => create(api, ONE_STEP, seq));
    await drain(admin);
    await reset();
    const loaded = loadConfig({ env: { ...process.env, ...env, DATABASE_URL: config.databaseUrl } });
    const library = await openServiceDatabase(loaded);
    let libraryCreation: CreationResult;
    try {
      const templates = new TemplateCache(templateCacheOptions(loaded.config));
      libraryCreation = await creationThroughput('library createTask()', (seq) =>
        createTask(library, taskRequest(ONE_STEP, seq), { templates }),
      );
      await drain(admin);
    } finally {
      await library.close();
    }

    // POST latency with auth off and on in the same run (a bearer token, an API key), taking turns request by
    // request.
    const auth = await authSetup(authFolder);
    await stopProcess(orchestration);
    // Two fresh orchestrators started together, one with auth off and one with it on: alike in age, pool and
    // warm-up, so the difference between the legs is authentication's.
    const [open, secured] = await Promise.all([
      startOrchestrationProcess({ databaseUrl: config.databaseUrl, env }),
      startOrchestrationProcess({
        databaseUrl: config.databaseUrl,
        env: { ...env, ...auth.env, TASKER_AUTH_ENABLED: 'true' },
      }),
    ]);
    processes.push(open, secured);
    await reset();
    const [authOff, authJwt, authKey] = (await interleavedCreateLatency([
      { api: open.url, credentials: {} },
      { api: secured.url, credentials: auth.bearer },
      { api: secured.url, credentials: auth.apiKey },
    ])) as [Distribution, Distribution, Distribution];

    printMachineHeader(
      'Tasker REST benchmark (separate orchestration and worker processes, HTTP client)',
      machine,
      new URL(config.databaseUrl).pathname.slice(1),
    );
    console.log('');
    console.log(
      formatTable(
        ['measurement', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'target p50'],
        [
          [
            'POST /v1/tasks (one-step task)',
            String(creates.count),
            ms(creates.p50),
            ms(creates.p95),
            ms(creates.p99),
            ms(creates.max),
            `≤ ${TARGETS.createP50Ms} ms`,
          ],
          [
            'linear 4-step, POST ?wait (one request)',
            String(chainOneRequest.latency.count),
            ms(chainOneRequest.latency.p50),
            ms(chainOneRequest.latency.p95),
            ms(chainOneRequest.latency.p99),
            ms(chainOneRequest.latency.max),
            `≤ ${TARGETS.linearP50Ms} ms`,
          ],
          [
            'linear 4-step, POST then GET ?wait',
            String(chain.latency.count),
            ms(chain.latency.p50),
            ms(chain.latency.p95),
            ms(chain.latency.p99),
            ms(chain.latency.max),
            `≤ ${TARGETS.linearP50Ms} ms`,
          ],
        ],
        [false, true, true, true, true, true, false],
      ),
    );
    console.log('');
    console.log(
      formatTable(
        ['bulk (submitted at once)', 'tasks', 'failed', 'seconds', 'tasks/s', 'latency p50 ms', 'p99 ms'],
        [diamonds, oneStep].map((r, i) => [
          i === 0 ? 'diamond (4 steps)' : 'one-step',
          String(r.tasks),
          String(r.failed),
          fixed(r.seconds, 2),
          fixed(r.tasksPerSecond, 0),
          ms(r.latency.p50),
          ms(r.latency.p99),
        ]),
        [false, true, true, true, true, true, true],
      ),
    );
    console.log('');
    console.log(
      formatTable(
        [
          `creation, ${config.concurrency} concurrent callers`,
          'tasks',
          'seconds',
          'tasks/s',
          'vs library',
          'p50 ms',
          'p99 ms',
        ],
        (
          [
            ['POST /v1/tasks (HTTP keep-alive)', httpCreation],
            ['library createTask() in-process', libraryCreation],
          ] as const
        ).map(([label, result]) => {
          return [
            label,
            String(result.tasks),
            fixed(result.seconds, 2),
            fixed(result.tasksPerSecond, 0),
            fixed(result.tasksPerSecond / libraryCreation.tasksPerSecond, 2),
            ms(result.latency.p50),
            ms(result.latency.p99),
          ];
        }),
        [false, true, true, true, true, true, true],
      ),
    );
    console.log('');
    console.log(
      formatTable(
        ['POST /v1/tasks, one at a time', 'n', 'p50 ms', 'p95 ms', 'Δ p50 vs off', 'target'],
        (
          [
            ['auth off', authOff],
            ['auth on, bearer JWT (RS256, static key)', authJwt],
            ['auth on, X-API-Key', authKey],
          ] as const
        ).map(([label, result]) => [
          label,
          String(result.count),
          ms(result.p50),
          ms(result.p95),
          result === authOff ? '' : ms(result.p50 - authOff.p50),
          result === authOff ? '' : '≤ 0.30 ms',
        ]),
        [false, true, true, true, true, false],
      ),
    );
    if (chain.failed + chainOneRequest.failed > 0)
      console.log(`  ${chain.failed + chainOneRequest.failed} linear runs did not complete`);
    console.log(
      `BENCH_JSON ${JSON.stringify({
        bench: 'rest',
        machine,
        create: { p50: round(creates.p50, 3), p95: round(creates.p95, 3), p99: round(creates.p99, 3) },
        auth: {
          offP50: round(authOff.p50, 3),
          jwtP50: round(authJwt.p50, 3),
          apiKeyP50: round(authKey.p50, 3),
        },
        linearOneRequest: {
          p50: round(chainOneRequest.latency.p50, 3),
          p95: round(chainOneRequest.latency.p95, 3),
          p99: round(chainOneRequest.latency.p99, 3),
          failed: chainOneRequest.failed,
        },
        linear: {
          p50: round(chain.latency.p50, 3),
          p95: round(chain.latency.p95, 3),
          p99: round(chain.latency.p99, 3),
          failed: chain.failed,
        },
        diamonds: {
          tasksPerSecond: round(diamonds.tasksPerSecond, 1),
          p50: round(diamonds.latency.p50, 1),
          p99: round(diamonds.latency.p99, 1),
        },
        oneStep: {
          tasksPerSecond: round(oneStep.tasksPerSecond, 1),
          p50: round(oneStep.latency.p50, 1),
          p99: round(oneStep.latency.p99, 1),
        },
        creation: {
          concurrency: config.concurrency,
          tasks: config.creationTasks,
          httpTasksPerSecond: round(httpCreation.tasksPerSecond, 1),
          httpP50: round(httpCreation.latency.p50, 3),
          httpP99: round(httpCreation.latency.p99, 3),
          libraryTasksPerSecond: round(libraryCreation.tasksPerSecond, 1),
          libraryP50: round(libraryCreation.latency.p50, 3),
          libraryP99: round(libraryCreation.latency.p99, 3),
          ratio: round(httpCreation.tasksPerSecond / libraryCreation.tasksPerSecond, 3),
        },
      })}`,
    );
  } finally {
    agent.destroy();
    await Promise.all(processes.map((p) => stopProcess(p)));
    await admin.close();
    rmSync(templates, { recursive: true, force: true });
    rmSync(authFolder, { recursive: true, force: true });
  }
}

await main();
