/**
 * The server around the routes: the OpenAPI document and Swagger UI, health probes, load shedding, request
 * timeouts, the body limit, request ids, and how unexpected and database failures are answered (generic,
 * no SQL, logged with the stack) — each over real HTTP.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { buildRestServer } from '../../../src/api/rest/server.ts';
import type { RestServerOptions } from '../../../src/api/rest/server.ts';
import type { Database, QueryOptions, SqlParam } from '../../../src/db/database.ts';
import { DatabaseError } from '../../../src/domain/errors.ts';
import { createMemoryLogger, LOG_LEVEL } from '../../helpers/engine/memoryLogger.ts';
import { listenLocally, useApi } from './apiHarness.ts';
import type { ErrorBody, TaskView } from './viewTypes.ts';

const getApi = useApi({ engine: false });
const UUID = '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6a';
const extraServers: FastifyInstance[] = [];

afterAll(async () => {
  for (const app of extraServers) await app.close();
});

/** Another server on the same database, with other options; closed after the file. */
async function startServer(options: Partial<RestServerOptions> = {}): Promise<string> {
  const app = await buildRestServer({ db: getApi().db, ...options });
  extraServers.push(app);
  return listenLocally(app);
}

/** The test database, except that queries matching `matches` fail (or stall) the way `fault` says. */
function faultyDatabase(db: Database, matches: RegExp, fault: () => Promise<never>): Database {
  return {
    kind: db.kind,
    displayName: db.displayName,
    query: <Row>(sql: string, params?: readonly SqlParam[], options?: QueryOptions) =>
      matches.test(sql) ? fault() : db.query<Row>(sql, params, options),
    exec: (sql) => db.exec(sql),
    transaction: (fn) => db.transaction(fn),
    openListenConnection: (handlers) => db.openListenConnection(handlers),
    poolStats: () => db.poolStats(),
    cancelRunning: () => db.cancelRunning(),
    close: () => Promise.resolve(),
  };
}

async function fetchJson<T>(url: string, init?: RequestInit) {
  const response = await fetch(url, init);
  const text = await response.text();
  return { response, text, body: JSON.parse(text) as T };
}

describe('OpenAPI document and Swagger UI', () => {
  const ROUTES: [string, string[]][] = [
    ['/v1/tasks', ['get', 'post']],
    ['/v1/tasks/{task_uuid}', ['delete', 'get']],
    ['/v1/tasks/{task_uuid}/workflow_steps', ['get']],
    ['/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}', ['get', 'patch']],
    ['/v1/templates', ['get']],
    ['/v1/templates/{namespace}/{name}/{version}', ['get']],
    ['/v1/workers', ['get']],
    ['/v1/dlq', ['get']],
    ['/v1/dlq/stats', ['get']],
    ['/v1/dlq/entry/{dlq_entry_uuid}', ['get', 'patch']],
    ['/v1/dlq/task/{task_uuid}', ['get']],
    ['/health', ['get']],
    ['/health/live', ['get']],
    ['/health/ready', ['get']],
    ['/health/detailed', ['get']],
  ];

  it('lists every route with a summary, its parameters and its responses', async () => {
    const { response, body } = await fetchJson<{
      openapi: string;
      info: { version: string };
      paths: Record<string, Record<string, Record<string, unknown>>>;
    }>(`${getApi().url}/api-docs/openapi.json`);
    expect(response.status).toBe(200);
    expect(body.openapi).toMatch(/^3\./);
    expect(body.info.version).toBe('test');
    expect(
      Object.entries(body.paths)
        .map(([path, ops]) => [path, Object.keys(ops).sort()] as [string, string[]])
        .sort(([a], [b]) => a.localeCompare(b)),
    ).toEqual([...ROUTES].sort(([a], [b]) => a.localeCompare(b)));
    for (const [path, ops] of Object.entries(body.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.summary, `${method} ${path}`).toEqual(expect.any(String));
        expect(Object.keys(op.responses as object), `${method} ${path}`).toEqual(
          expect.arrayContaining([expect.stringMatching(/^2\d\d$/)]),
        );
      }
    }
    const create = body.paths['/v1/tasks']?.post as {
      requestBody: { content: { 'application/json': { schema: { properties: Record<string, unknown> } } } };
      responses: Record<string, unknown>;
    };
    expect(Object.keys(create.requestBody.content['application/json'].schema.properties)).toEqual(
      expect.arrayContaining(['name', 'namespace', 'version', 'context', 'idempotency_key']),
    );
    expect(Object.keys(create.responses)).toEqual(
      expect.arrayContaining(['201', '400', '404', '409', '413', '503']),
    );
    const patch = body.paths['/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}']?.patch as {
      parameters: { name: string; in: string }[];
    };
    expect(patch.parameters.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
      'path:step_uuid',
      'path:task_uuid',
    ]);
  });

  it('serves Swagger UI at /api-docs', async () => {
    const response = await fetch(`${getApi().url}/api-docs`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(await response.text()).toContain('swagger');
  });
});

describe('health probes', () => {
  it('/health and /health/live answer healthy with a timestamp', async () => {
    for (const path of ['/health', '/health/live']) {
      const { response, body } = await fetchJson<{ status: string; timestamp: string }>(
        `${getApi().url}${path}`,
      );
      expect(response.status).toBe(200);
      expect(body.status).toBe('healthy');
      expect(Math.abs(Date.parse(body.timestamp) - Date.now())).toBeLessThan(60_000);
    }
  });

  it('/health/ready checks the database', async () => {
    const { response, body } = await fetchJson<{
      status: string;
      checks: Record<string, { status: string; duration_ms: number }>;
    }>(`${getApi().url}/health/ready`);
    expect(response.status).toBe(200);
    expect(body.status).toBe('healthy');
    expect(body.checks.database?.status).toBe('healthy');
    expect(body.checks.database?.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('/health/ready is 503 when a check is unhealthy, 200 degraded when one is degraded', async () => {
    const logs = createMemoryLogger('warn');
    const url = await startServer({
      logger: logs.logger,
      readinessChecks: {
        listener: () => Promise.resolve({ status: 'degraded', message: 'reconnecting' }),
        broken: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.1:5432 password=secret')),
      },
    });
    const { response, body, text } = await fetchJson<{
      status: string;
      checks: Record<string, { status: string; message?: string }>;
    }>(`${url}/health/ready`);
    expect(response.status).toBe(503);
    expect(body.status).toBe('unhealthy');
    expect(body.checks).toMatchObject({
      database: { status: 'healthy' },
      listener: { status: 'degraded', message: 'reconnecting' },
      broken: { status: 'unhealthy', message: 'check failed; see the service log' },
    });
    expect(text).not.toContain('secret');
    expect(logs.withMessage('readiness check failed')).toHaveLength(1);

    const degradedUrl = await startServer({
      readinessChecks: { listener: () => Promise.resolve({ status: 'degraded' }) },
    });
    const degraded = await fetchJson<{ status: string }>(`${degradedUrl}/health/ready`);
    expect(degraded.response.status).toBe(200);
    expect(degraded.body.status).toBe('degraded');
  });
});

describe('failures the client cannot fix', () => {
  it('an unexpected error is a generic 500 with the request id; the log has the stack, the client no SQL', async () => {
    const logs = createMemoryLogger('debug');
    const url = await startServer({
      logger: logs.logger,
      db: faultyDatabase(getApi().db, /get_task_execution_context/, () =>
        Promise.reject(
          Object.assign(
            new Error('relation "tasker.secret_table" does not exist at character 42: SELECT * FROM x'),
            {
              code: '42P01',
            },
          ),
        ),
      ),
    });
    const { response, body, text } = await fetchJson<ErrorBody>(`${url}/v1/tasks/${UUID}`);
    expect(response.status).toBe(500);
    const requestId = response.headers.get('x-request-id') ?? '';
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.error.code).toBe('TASKER_INTERNAL');
    expect(body.error.message).toContain(requestId);
    expect(body.error.details).toEqual({ request_id: requestId });
    expect(text).not.toMatch(/secret_table|42P01|SELECT|relation|stack/);
    const logged = logs.atLeast(LOG_LEVEL.error);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ request_id: requestId, msg: 'request failed unexpectedly' });
    expect(JSON.stringify(logged[0])).toContain('secret_table');
    expect((logged[0]?.err as { stack?: string }).stack).toContain('Error: relation');
    // The server goes on serving.
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('an unreachable database is 503 TASKER_DATABASE_UNAVAILABLE with Retry-After', async () => {
    const url = await startServer({
      db: faultyDatabase(getApi().db, /tasker\.tasks/, () =>
        Promise.reject(
          new DatabaseError('TASKER_DATABASE_UNAVAILABLE', 'cannot connect to postgres://u:***@db/x'),
        ),
      ),
    });
    const { response, body, text } = await fetchJson<ErrorBody>(`${url}/v1/tasks`);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(body.error.code).toBe('TASKER_DATABASE_UNAVAILABLE');
    expect(text).not.toContain('postgres://');

    const refusedUrl = await startServer({
      db: faultyDatabase(getApi().db, /tasker\.tasks/, () =>
        Promise.reject(
          Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
        ),
      ),
    });
    const refused = await fetchJson<ErrorBody>(`${refusedUrl}/v1/tasks`);
    expect(refused.response.status).toBe(503);
    expect(refused.body.error.code).toBe('TASKER_DATABASE_UNAVAILABLE');
    expect(refused.text).not.toContain('ECONNREFUSED');
  });

  it('a request that takes longer than requestTimeoutMs is 503 TASKER_REQUEST_TIMEOUT', async () => {
    const url = await startServer({
      requestTimeoutMs: 100,
      db: faultyDatabase(
        getApi().db,
        /WITH filtered AS/,
        () => new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('late')), 600)),
      ),
    });
    const started = Date.now();
    const { response, body } = await fetchJson<ErrorBody>(`${url}/v1/tasks`);
    expect(response.status).toBe(503);
    expect(body.error.code).toBe('TASKER_REQUEST_TIMEOUT');
    expect(response.headers.get('retry-after')).toBe('1');
    expect(Date.now() - started).toBeLessThan(550);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('sheds task creation with 503 TASKER_SERVICE_OVERLOADED and Retry-After while reads go on', async () => {
    const url = await startServer({ backpressure: () => 2.5 });
    const { response, body } = await fetchJson<ErrorBody>(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        namespace: 'math',
        name: 'diamond_pattern',
        version: '1.0.0',
        context: { n: 1 },
      }),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(body.error.code).toBe('TASKER_SERVICE_OVERLOADED');
    expect(body.error.message).toContain('retry after 3 s');
    expect((await fetch(`${url}/v1/tasks`)).status).toBe(200);
  });
});

describe('limits and request ids', () => {
  it('bodyLimitBytes: a larger body is 413 naming the limit', async () => {
    const url = await startServer({ bodyLimitBytes: 1000 });
    const body = JSON.stringify({
      namespace: 'math',
      name: 'diamond_pattern',
      context: { n: 1, pad: 'x'.repeat(1200) },
    });
    const { response, body: error } = await fetchJson<ErrorBody>(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(response.status).toBe(413);
    expect(error.error).toMatchObject({ code: 'TASKER_BODY_TOO_LARGE', details: { limit_bytes: 1000 } });
    expect(error.error.message).toContain('1000 bytes');
  });

  it('accepts JSON with a charset and +json media types', async () => {
    const api = getApi();
    for (const type of ['application/json; charset=utf-8', 'application/vnd.tasker+json']) {
      const response = await api.request<TaskView>(
        'POST',
        '/v1/tasks',
        JSON.stringify({ namespace: 'math', name: 'diamond_pattern', version: '1.0.0', context: { n: 2 } }),
        { headers: { 'content-type': type } },
      );
      expect(response.status, `${type}: ${response.text}`).toBe(201);
    }
  });

  it('keeps a safe X-Request-Id from the caller and replaces a hostile one', async () => {
    const api = getApi();
    const kept = await api.request('GET', '/health', undefined, {
      headers: { 'x-request-id': 'trace-42.abc' },
    });
    expect(kept.headers.get('x-request-id')).toBe('trace-42.abc');
    const replaced = await api.request('GET', '/health', undefined, {
      headers: { 'x-request-id': '<script>alert(1)</script>' },
    });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs each request at debug with its id, status and duration', async () => {
    const api = getApi();
    const response = await api.request('GET', '/v1/tasks?per_page=1', undefined, {
      headers: { 'x-request-id': 'log-check-1' },
    });
    expect(response.status).toBe(200);
    const entry = api.logs.withMessage('http request').find((e) => e.request_id === 'log-check-1');
    expect(entry).toMatchObject({ method: 'GET', route: '/v1/tasks', status: 200, level: LOG_LEVEL.debug });
    expect(entry?.duration_ms).toEqual(expect.any(Number));
  });
});
