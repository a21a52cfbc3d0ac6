/**
 * POST /v1/tasks reads its template from the registry once per request with the template cache off, and not
 * at all on a cache hit; the 201 answer's dependencies come from the template the task was planned from.
 * Reads are counted at the database wrapper, so every statement on tasker.named_tasks the server sends is
 * seen, whichever module sends it. Also what the cache setting means for a re-registered template.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRestServer } from '../../../src/api/rest/server.ts';
import type { Database, Queryable } from '../../../src/db/database.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { TemplateCache } from '../../../src/orchestration/templateCache.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';
import { listenLocally } from './apiHarness.ts';
import type { TaskView } from './viewTypes.ts';

const REGISTRY_READ = /\bFROM\s+tasker\.named_tasks\b/i;

/** `db` with every statement that reads tasker.named_tasks counted, in or out of a transaction. */
function countingTemplateReads(db: Database): { db: Database; reads: () => number } {
  let reads = 0;
  const counted = <Q extends Queryable>(target: Q): Q =>
    new Proxy(target, {
      get(object, property, receiver) {
        if (property === 'query') {
          return (sql: string, ...rest: unknown[]) => {
            if (REGISTRY_READ.test(sql)) reads++;
            return (object.query as (...args: unknown[]) => unknown).call(object, sql, ...rest);
          };
        }
        if (property === 'transaction') {
          return <T>(fn: (tx: Queryable) => Promise<T>) =>
            (object as unknown as Database).transaction((tx) => fn(counted(tx)));
        }
        const value: unknown = Reflect.get(object, property, receiver);
        return typeof value === 'function' ? (value as () => unknown).bind(object) : value;
      },
    });
  return { db: counted(db), reads: () => reads };
}

function diamondNamed(name: string): TaskTemplate {
  const diamond = exampleTemplates().find((t) => t.name === 'diamond_pattern');
  if (diamond === undefined) throw new Error('the example templates have no diamond_pattern');
  return { ...diamond, name };
}

const getTestDb = useTestDatabase();

interface Server {
  reads: () => number;
  post: (name: string, n: number) => Promise<TaskView>;
}

/** A REST server on a counted pool, with the given template cache; closed after the file. */
function useServer(templates: () => TemplateCache): () => Server {
  let app: FastifyInstance | undefined;
  let server: Server | undefined;
  beforeAll(async () => {
    const { db, reads } = countingTemplateReads(getTestDb().openPool({ maxConnections: 4 }));
    app = await buildRestServer({ db, templates: templates() });
    const url = await listenLocally(app);
    server = {
      reads,
      post: async (name, n) => {
        const response = await fetch(`${url}/v1/tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ namespace: 'math', name, version: '1.0.0', context: { n } }),
        });
        const text = await response.text();
        if (response.status !== 201) throw new Error(`POST /v1/tasks: HTTP ${response.status} ${text}`);
        return JSON.parse(text) as TaskView;
      },
    };
  });
  afterAll(async () => {
    await app?.close();
  });
  return () => {
    if (server === undefined) throw new Error('the server exists only inside tests');
    return server;
  };
}

const dependenciesOf = (view: TaskView): Record<string, string[]> =>
  Object.fromEntries(view.steps.map((step) => [step.name, step.dependencies]));

describe('POST /v1/tasks with the template cache off', () => {
  const getServer = useServer(() => new TemplateCache({ enabled: false }));

  it('reads the template once per request and answers with its dependencies', async () => {
    await registerTemplate(getTestDb().db, diamondNamed('diamond_uncached'));
    const server = getServer();
    const before = server.reads();
    const views = [];
    for (let n = 1; n <= 3; n++) views.push(await server.post('diamond_uncached', n));
    expect(server.reads() - before).toBe(3);
    for (const view of views) {
      expect(dependenciesOf(view)).toEqual({
        diamond_start: [],
        diamond_branch_b: ['diamond_start'],
        diamond_branch_c: ['diamond_start'],
        diamond_end: ['diamond_branch_b', 'diamond_branch_c'],
      });
    }
  });

  it('plans the next task from a template re-registered with changes', async () => {
    const db = getTestDb().db;
    const template = diamondNamed('diamond_changed_uncached');
    await registerTemplate(db, template);
    const server = getServer();
    expect(dependenciesOf(await server.post(template.name, 1)).diamond_end).toEqual([
      'diamond_branch_b',
      'diamond_branch_c',
    ]);
    await registerTemplate(db, {
      ...template,
      steps: template.steps.map((step) =>
        step.name === 'diamond_end' ? { ...step, dependencies: ['diamond_branch_b'] } : step,
      ),
    });
    expect(dependenciesOf(await server.post(template.name, 2)).diamond_end).toEqual(['diamond_branch_b']);
  });
});

describe('POST /v1/tasks with the template cache on', () => {
  const getServer = useServer(() => new TemplateCache({ enabled: true, ttlSeconds: 300 }));

  it('reads the template once for the first request and not again while it is cached', async () => {
    await registerTemplate(getTestDb().db, diamondNamed('diamond_cached'));
    const server = getServer();
    const before = server.reads();
    for (let n = 1; n <= 3; n++) {
      const view = await server.post('diamond_cached', n);
      expect(dependenciesOf(view).diamond_end).toEqual(['diamond_branch_b', 'diamond_branch_c']);
    }
    expect(server.reads() - before).toBe(1);
  });

  it('keeps planning from the cached template until its TTL runs out, even after a re-registration', async () => {
    const db = getTestDb().db;
    const template = diamondNamed('diamond_changed_cached');
    await registerTemplate(db, template);
    const server = getServer();
    await server.post(template.name, 1);
    await registerTemplate(db, {
      ...template,
      steps: template.steps.map((step) =>
        step.name === 'diamond_end' ? { ...step, dependencies: ['diamond_branch_b'] } : step,
      ),
    });
    expect(dependenciesOf(await server.post(template.name, 2)).diamond_end).toEqual([
      'diamond_branch_b',
      'diamond_branch_c',
    ]);
  });
});
