/**
 * `tasker-workflows/embed`: orchestration and a worker started in the test's own process from plain options,
 * on real PostgreSQL and on PGlite. A typed workflow defined in code runs to completion; nothing listens unless
 * asked; an unmigrated database is refused unless `migrate: true`; the configuration is the services'.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startTasker } from '../../../src/embed.ts';
import type { EmbeddedTasker } from '../../../src/embed.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { resolveEmbeddedConfig } from '../../../src/services/embeddedTasker.ts';
import {
  orchestratorRuntimeOptions,
  templateCacheOptions,
  workerRuntimeOptions,
} from '../../../src/services/serviceOptions.ts';
import { poolOptions } from '../../../src/services/runtimeOptions.ts';
import { diamond } from '../../fixtures/workflows/diamondWorkflow.ts';
import { stepsByName } from '../../helpers/engine/inspect.ts';
import { waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** Inodes of the TCP sockets this process listens on (from /proc: forks run one test file per process). */
function listeningSockets(): Set<string> {
  const listening = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const columns = line.trim().split(/\s+/);
      // Column 4 is the state (0A: LISTEN), column 10 the socket's inode.
      if (columns[3] === '0A' && columns[9] !== undefined) listening.add(columns[9]);
    }
  }
  const own = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed between the listing and the read
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && listening.has(inode)) own.add(inode);
  }
  return own;
}

const started: EmbeddedTasker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((tasker) => tasker.stop()));
});

async function runDiamond(tasker: EmbeddedTasker): Promise<void> {
  const created = await tasker.createTask(diamond, { n: 6 });
  await waitForTask(tasker.database, created.taskUuid, 'complete', 20_000);
  const steps = await stepsByName(tasker.database, created.taskUuid);
  expect(steps.split?.results).toEqual({ half: 3, label: 'DIAMOND' });
  expect(steps.total?.results).toMatchObject({ label: 'diamond', total: 15 });
}

describe('startTasker on PostgreSQL', () => {
  const getTestDb = useTestDatabase();
  const getEmptyDb = useTestDatabase({ migrated: false });

  it('runs a typed workflow with both roles, opens no port, and stops once', async () => {
    const before = listeningSockets();
    const tasker = await startTasker({
      databaseUrl: getTestDb().url,
      worker: { workflows: [diamond] },
      logger: 'silent',
      environment: 'test',
    });
    started.push(tasker);
    expect(listeningSockets()).toEqual(before);
    expect(tasker.restUrl).toBeUndefined();
    expect(tasker.workerUrl).toBeUndefined();
    await runDiamond(tasker);
    // The input is typed from the workflow's zod schema.
    // @ts-expect-error n must be a number
    await expect(tasker.createTask(diamond, { n: 'six' })).rejects.toMatchObject({
      code: 'TASKER_INVALID_CONTEXT',
    });

    await tasker.stop();
    await tasker.stop();
    await expect(tasker.database.query('SELECT 1')).rejects.toThrow();
  });

  it('opens the listeners it is asked for, on the address given', async () => {
    const before = listeningSockets();
    const tasker = await startTasker({
      databaseUrl: getTestDb().url,
      listen: { rest: 0 },
      logger: 'silent',
      environment: 'test',
    });
    started.push(tasker);
    expect(tasker.restUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(listeningSockets().size).toBe(before.size + 1);
    const health = await fetch(`${tasker.restUrl ?? ''}/health`);
    expect(health.status).toBe(200);
    await tasker.stop();
    expect(listeningSockets()).toEqual(before);
  });

  it('refuses an unmigrated database unless migrate: true', async () => {
    const databaseUrl = getEmptyDb().url;
    await expect(startTasker({ databaseUrl, logger: 'silent' })).rejects.toMatchObject({
      code: 'TASKER_SCHEMA_NOT_MIGRATED',
    });
    const tasker = await startTasker({
      databaseUrl,
      migrate: true,
      worker: { workflows: [diamond] },
      logger: 'silent',
      environment: 'test',
    });
    started.push(tasker);
    await runDiamond(tasker);
  });
});

describe('startTasker on PGlite', () => {
  it('migrates an in-memory database on request and runs the workflow', async () => {
    const tasker = await startTasker({
      databaseUrl: 'pglite:memory',
      migrate: true,
      worker: { workflows: [diamond] },
      logger: 'silent',
      environment: 'test',
    });
    started.push(tasker);
    await runDiamond(tasker);
    await tasker.stop();
    await tasker.stop();
  });
});

describe('the embedded configuration', () => {
  // What `tasker orchestration` / `tasker worker` resolve with TASKER_ENV set and no other variable.
  const serviceConfig = (environment: string) =>
    loadConfig({ env: { TASKER_ENV: environment }, cwd: process.cwd() }).config;

  it.each(['development', 'test', 'production'] as const)(
    'equals the services’ for %s, except the listeners it leaves closed',
    (environment) => {
      const service = serviceConfig(environment);
      const embedded = resolveEmbeddedConfig({
        databaseUrl: service.database.url,
        environment,
      }).config;
      expect(workerRuntimeOptions(embedded)).toEqual(workerRuntimeOptions(service));
      expect(orchestratorRuntimeOptions(embedded)).toEqual(orchestratorRuntimeOptions(service));
      expect(templateCacheOptions(embedded)).toEqual(templateCacheOptions(service));
      expect(poolOptions(embedded)).toEqual(poolOptions(service));
      expect(service.orchestration.web.enabled).toBe(true);
      expect(embedded.orchestration.web.enabled).toBe(false);
      expect(embedded.worker.web.enabled).toBe(false);
      expect(embedded.orchestration.grpc.enabled).toBe(false);
      expect(embedded.worker.grpc.enabled).toBe(false);
    },
  );

  it('takes its defaults from the schema: worker shutdown and template cache as the service has them', () => {
    const defaults = configSchema.parse({});
    const embedded = resolveEmbeddedConfig({ databaseUrl: 'pglite:memory' }).config;
    expect(embedded.worker.shutdown_timeout_ms).toBe(defaults.worker.shutdown_timeout_ms);
    expect(embedded.database.query_cache).toEqual(defaults.database.query_cache);
    expect(embedded.executor_pools).toEqual(defaults.executor_pools);
    expect(embedded.worker.max_concurrent_handlers).toBe(defaults.worker.max_concurrent_handlers);
  });

  it('refuses an option the schema refuses, naming the key', () => {
    expect(() =>
      resolveEmbeddedConfig({ databaseUrl: 'pglite:memory', worker: { namespaces: ['Bad-Name'] } }),
    ).toThrow(/worker\.namespaces/);
  });
});
