/**
 * The REST API over real HTTP against a real database, with an in-process orchestrator and worker serving
 * the example workflows, so tasks created through the API actually run.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import handlers from '../../../examples/handlers/index.ts';
import { buildRestServer } from '../../../src/api/rest/server.ts';
import type { RestServerOptions } from '../../../src/api/rest/server.ts';
import type { Database } from '../../../src/db/database.ts';
import type { StepHandlerDefinition } from '../../../src/worker/handlerApi.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { TemplateCache } from '../../../src/orchestration/templateCache.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';
import { createMemoryLogger } from '../../helpers/engine/memoryLogger.ts';
import type { MemoryLogger } from '../../helpers/engine/memoryLogger.ts';
import { sleep } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface Api {
  url: string;
  db: Database;
  app: FastifyInstance;
  cluster: Cluster | undefined;
  logs: MemoryLogger;
  request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    init?: RequestInit,
  ): Promise<ApiResponse<T>>;
  get<T = unknown>(path: string): Promise<ApiResponse<T>>;
  post<T = unknown>(path: string, body: unknown): Promise<ApiResponse<T>>;
  patch<T = unknown>(path: string, body: unknown): Promise<ApiResponse<T>>;
  delete<T = unknown>(path: string): Promise<ApiResponse<T>>;
  /** Polls GET /v1/tasks/{uuid} until the task is in one of `states`; returns that view. */
  waitForStatus<T extends { status: string }>(
    taskUuid: string,
    states: readonly string[],
    timeoutMs?: number,
  ): Promise<T>;
}

export interface ApiHarnessOptions {
  /** Run an orchestrator and a worker. @defaultValue true */
  engine?: boolean;
  handlers?: readonly StepHandlerDefinition[];
  templates?: readonly TaskTemplate[];
  server?: Partial<Omit<RestServerOptions, 'db'>>;
}

export const TERMINAL = ['complete', 'error', 'cancelled', 'resolved_manually'] as const;

/** Listens on an ephemeral port of 127.0.0.1; returns the base URL. */
export async function listenLocally(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Registers beforeAll/afterAll: database, engine, server listening on 127.0.0.1 port 0. */
export function useApi(options: ApiHarnessOptions = {}): () => Api {
  const getTestDb = useTestDatabase();
  let api: Api | undefined;
  let cluster: Cluster | undefined;
  let app: FastifyInstance | undefined;

  beforeAll(async () => {
    const db = getTestDb().openPool({ maxConnections: 8 });
    const logs = createMemoryLogger('debug');
    cluster = await startCluster({
      db,
      inline: true,
      handlers: options.handlers ?? handlers,
      templates: options.templates ?? exampleTemplates(),
      pollIntervalMs: 100,
      ...(options.engine === false && { orchestrators: 0, workers: 0 }),
    });
    if (options.engine === false) {
      // Templates are registered by workers; without one, register them directly.
      const { registerTemplate } = await import('../../../src/db/queries/registerTemplate.ts');
      for (const template of options.templates ?? exampleTemplates()) await registerTemplate(db, template);
    }
    app = await buildRestServer({
      db,
      logger: logs.logger,
      templates: new TemplateCache(),
      version: 'test',
      ...options.server,
    });
    const url = await listenLocally(app);
    const request = async <T>(
      method: string,
      path: string,
      body?: unknown,
      init: RequestInit = {},
    ): Promise<ApiResponse<T>> => {
      const response = await fetch(`${url}${path}`, {
        method,
        ...(body !== undefined && {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        }),
        ...init,
      });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, body: parsed as T, text };
    };
    api = {
      url,
      db,
      app,
      cluster,
      logs,
      request,
      get: (path) => request('GET', path),
      post: (path, body) => request('POST', path, body),
      patch: (path, body) => request('PATCH', path, body),
      delete: (path) => request('DELETE', path),
      waitForStatus: async <T extends { status: string }>(
        taskUuid: string,
        states: readonly string[],
        timeoutMs = 15_000,
      ): Promise<T> => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const response = await request<T>('GET', `/v1/tasks/${taskUuid}`);
          if (response.status !== 200)
            throw new Error(`GET task ${taskUuid}: HTTP ${response.status} ${response.text}`);
          if (states.includes(response.body.status)) return response.body;
          if (Date.now() > deadline) {
            throw new Error(
              `task ${taskUuid} did not reach ${states.join('/')} in ${timeoutMs} ms: ${response.text}`,
            );
          }
          await sleep(20);
        }
      },
    };
  });

  afterAll(async () => {
    await app?.close();
    await cluster?.stop();
  });

  return () => {
    if (api === undefined) throw new Error('useApi: the API exists only inside tests and hooks');
    return api;
  };
}
