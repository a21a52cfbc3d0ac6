import { fastify } from 'fastify';
import type { FastifyInstance } from 'fastify';
import { registerMetricsRoute } from '../api/rest/routes/metricsRoute.ts';
import type { Database } from '../db/database.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';
import type { Worker } from '../worker/worker.ts';

export interface WorkerHttpOptions {
  db: Database;
  worker: Worker;
  templates: readonly TaskTemplate[];
  version: string;
  isStopping: () => boolean;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  /** Serves `GET /metrics` from it and counts HTTP requests into it. @defaultValue none */
  metrics?: TaskerMetrics;
}

const errorBody = (code: string, message: string) => ({ error: { code, message } });

/**
 * The worker's small HTTP surface (port 8081): liveness and readiness probes for Kubernetes and the
 * templates this worker serves. Task APIs live on orchestration.
 */
export async function buildWorkerHttp(options: WorkerHttpOptions): Promise<FastifyInstance> {
  const app = fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    requestTimeout: options.requestTimeoutMs,
    return503OnClosing: true,
  });
  const now = () => new Date().toISOString();
  if (options.metrics !== undefined) registerMetricsRoute(app, options.metrics);

  app.get('/health', () => ({ status: 'healthy', timestamp: now() }));
  app.get('/health/live', () => ({ status: 'healthy', timestamp: now() }));
  app.get('/health/ready', async (_request, reply) => {
    const started = performance.now();
    let database: { status: string; message?: string; duration_ms: number };
    try {
      await options.db.query('SELECT 1');
      database = { status: 'healthy', duration_ms: Math.round(performance.now() - started) };
    } catch (error) {
      database = {
        status: 'unhealthy',
        message: `database unreachable: ${(error as Error).message}`,
        duration_ms: Math.round(performance.now() - started),
      };
    }
    const worker = options.isStopping()
      ? { status: 'unhealthy', message: 'shutting down' }
      : {
          status: 'healthy',
          message: `${options.worker.activeExecutions} step(s) running; namespaces ${options.worker.namespaces.join(', ')}`,
        };
    const ready = database.status === 'healthy' && worker.status === 'healthy';
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'healthy' : 'unhealthy',
      timestamp: now(),
      checks: { database, worker },
      info: { version: options.version, worker_id: options.worker.id, namespaces: options.worker.namespaces },
    });
  });
  app.get('/v1/templates', () => ({
    templates: options.templates.map((t) => ({
      namespace: t.namespace,
      name: t.name,
      version: t.version,
      description: t.description,
      step_count: t.steps.length,
    })),
  }));
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(
        errorBody(
          'TASKER_ROUTE_NOT_FOUND',
          `no route ${request.method} ${request.url} on the worker; it serves /health, /health/live, /health/ready, /metrics and /v1/templates`,
        ),
      ),
  );
  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
    return reply
      .code(status)
      .send(
        errorBody(
          status === 500 ? 'TASKER_INTERNAL' : 'TASKER_INVALID_REQUEST',
          status === 500 ? 'internal error' : error.message,
        ),
      );
  });
  await app.ready();
  return app;
}
