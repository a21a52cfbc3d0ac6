import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { Worker } from '../../src/worker/worker.ts';
import { createTask } from '../../src/orchestration/taskInitializer.ts';
import { TemplateCache } from '../../src/orchestration/templateCache.ts';
import { benchHandlers, benchTemplates, LINEAR, taskRequest } from './benchTemplates.ts';
const url = 'postgres://root@127.0.0.1:5432/tasker_bench_engine';
const db = new PostgresDatabase(url, { maxConnections: 10 });
const events: { t: number; what: string }[] = [];
const orig = db.query.bind(db);
(db as any).query = async (sql: string, params?: any, opts?: any) => {
  const name = opts?.name ?? sql.slice(0, 30);
  events.push({ t: performance.now(), what: `start ${name}` });
  const r = await orig(sql, params, opts);
  events.push({ t: performance.now(), what: `end ${name}` });
  return r;
};
const provider = new PgmqMessagingProvider(db);
const worker = new Worker({ db, provider, handlers: benchHandlers, templates: benchTemplates(), applyResultsInline: true });
await worker.start();
const creator = new PostgresDatabase(url, { maxConnections: 1 });
const poller = new PostgresDatabase(url, { maxConnections: 1 });
const templates = new TemplateCache();
const totals = new Map<string, number[]>();
for (let i = 0; i < 60; i++) {
  events.length = 0;
  const t0 = performance.now();
  const task = await createTask(creator, taskRequest(LINEAR, i), { templates });
  const t1 = performance.now();
  for (;;) {
    const { rows } = await poller.query<{ current_state: string }>('SELECT current_state FROM tasker.tasks WHERE task_uuid = $1', [task.taskUuid]);
    if (rows[0]?.current_state === 'complete') break;
    await new Promise((r) => setTimeout(r, 1));
  }
  const t2 = performance.now();
  if (i < 55) continue;
  const add = (k: string, v: number) => { const a = totals.get(k) ?? []; a.push(v); totals.set(k, a); };
  add('create', t1 - t0); add('total', t2 - t0);
  let prevEnd: number | null = null; let n = 0;
  for (const e of events) {
    if (e.what.startsWith('start')) { if (prevEnd !== null) add(`gap before ${e.what.slice(6)} #${n}`, e.t - prevEnd); n++; }
    else prevEnd = e.t;
  }
  console.log(i, events.map((e) => `${(e.t - t1).toFixed(2)} ${e.what}`).join(' | '));
  add('first worker query after create', (events[0]?.t ?? t1) - t1);
}
const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
for (const [k, v] of [...totals.entries()].sort()) console.log(k.padEnd(50), med(v).toFixed(3), `n=${v.length}`);
await worker.stop(); await provider.close(); await db.close(); await creator.close(); await poller.close();
