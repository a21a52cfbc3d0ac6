import { errorLabel } from '../resilience/circuitBreaker.ts';
import { fastify } from 'fastify';
import type { FastifyInstance } from 'fastify';
import { ApiError, quoteInput } from '../api/rest/apiError.ts';
import { sendError } from '../api/rest/errorHandler.ts';
import { hardenHttp, protocolOptions } from '../api/rest/httpProtocol.ts';
import type { Authenticator } from '../api/auth/authenticator.ts';
import { registerRouteAccess } from '../api/auth/routeAccess.ts';
import { registerMetricsRoute } from '../api/rest/routes/metricsRoute.ts';
import {
  circuitBreakerStates,
  circuitBreakerDetailsSection,
  circuitBreakersSection,
  componentStatus,
  databaseCheck,
  databaseSection,
  eventListenersSection,
  pollingSection,
  workIntake,
} from '../api/rest/healthReport.ts';
import type { HealthSources } from '../api/rest/healthReport.ts';
import type { Database } from '../db/database.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';
import type { Worker } from '../worker/worker.ts';

export interface WorkerHttpOptions {
  db: Database;
  worker: Worker;
  templates: readonly TaskTemplate[];
  version: string;
  isStopping: () => boolean;
  /**
   * How the worker learns of work. With it, a worker that cannot receive any (listener down and polling off)
   * reports 503 on /health and /health/ready. @defaultValue none (intake is not checked)
   */
  healthSources?: HealthSources;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  /** Serves `GET /metrics` from it and counts HTTP requests into it. @defaultValue none */
  metrics?: TaskerMetrics;
  /** Refused and failed requests, as the orchestration API logs them. @defaultValue silent */
  logger?: Logger;
  /** Credentials each route needs (`[worker.web.auth]`). @defaultValue none: every route open */
  auth?: Authenticator;
}

/**
 * The worker's small HTTP surface (port 8081): liveness and readiness probes for Kubernetes and the
 * templates this worker serves. Task APIs live on orchestration.
 */
export async function buildWorkerHttp(options: WorkerHttpOptions): Promise<FastifyInstance> {
  const logger = options.logger ?? silentLogger;
  const bodyLimit = options.bodyLimitBytes;
  const app = fastify({
    logger: false,
    ...protocolOptions(logger),
    bodyLimit: options.bodyLimitBytes,
    requestTimeout: options.requestTimeoutMs,
    return503OnClosing: true,
  });
  // Before any route: the same request ids, parser-error answers and query refusal as the orchestration API.
  hardenHttp(app, logger);
  registerRouteAccess(app, options.auth);
  const now = () => new Date().toISOString();
  if (options.metrics !== undefined) registerMetricsRoute(app, options.metrics);

  const startedAt = Date.now();
  const sources = options.healthSources;
  const intake = () => {
    if (sources === undefined) return { status: 'healthy' as const };
    const { canReceiveWork, problem } = workIntake(sources);
    if (canReceiveWork) return { status: 'healthy' as const, ...(problem !== null && { message: problem }) };
    return {
      status: 'unhealthy' as const,
      message: `cannot receive work: ${problem ?? 'no listener and no polling'}`,
    };
  };
  /**
   * Healthy only when the database answers, work can arrive, no circuit breaker is open and the worker is not
   * shutting down.
   */
  const overall = async () => {
    const database = await componentStatus(databaseCheck(options.db));
    // An open circuit breaker fails claims and results at once: no work gets done until it closes.
    const healthy =
      database === 'healthy' &&
      intake().status === 'healthy' &&
      !options.isStopping() &&
      !circuitBreakerStates(sources).anyOpen;
    return { status: healthy ? ('healthy' as const) : ('unhealthy' as const), database };
  };
  const workerSummary = () => ({
    namespaces: options.worker.namespaces,
    active_executions: options.worker.activeExecutions,
    // A claimed step starts running at once, so every claimed step is an active execution.
    claimed_steps: options.worker.activeExecutions,
    capacity: options.worker.capacity,
  });

  const PUBLIC = { config: { access: 'public' as const } };
  app.get('/health', PUBLIC, async (_request, reply) => {
    const { status } = await overall();
    return reply
      .code(status === 'healthy' ? 200 : 503)
      .send({ status, timestamp: now(), ...workerSummary() });
  });
  app.get('/health/detailed', { config: { access: 'operational' } }, async (_request, reply) => {
    const { status, database } = await overall();
    return reply.code(status === 'healthy' ? 200 : 503).send({
      status,
      timestamp: now(),
      version: options.version,
      uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
      ...(sources !== undefined && {
        deployment_mode: sources.coordination.mode,
        event_listeners: eventListenersSection(sources),
        polling: pollingSection(sources),
      }),
      ...(sources !== undefined &&
        workIntake(sources).problem !== null && { message: workIntake(sources).problem }),
      work_intake: intake(),
      database: databaseSection(options.db, database),
      circuit_breakers: circuitBreakersSection(sources),
      circuit_breaker_details: circuitBreakerDetailsSection(sources),
      worker: { id: options.worker.id, ...workerSummary(), stopping: options.isStopping() },
    });
  });
  app.get('/health/live', PUBLIC, () => ({ status: 'healthy', timestamp: now() }));
  app.get('/health/ready', PUBLIC, async (_request, reply) => {
    const started = performance.now();
    let database: { status: string; message?: string; duration_ms: number };
    try {
      await options.db.query('SELECT 1');
      database = { status: 'healthy', duration_ms: Math.round(performance.now() - started) };
    } catch (error) {
      database = {
        status: 'unhealthy',
        // The code only: the message names the database's user, host and name, and this route is public.
        message: `database unreachable (${errorLabel(error)})`,
        duration_ms: Math.round(performance.now() - started),
      };
    }
    const worker = options.isStopping()
      ? { status: 'unhealthy', message: 'shutting down' }
      : {
          status: 'healthy',
          message: `${options.worker.activeExecutions} step(s) running; namespaces ${options.worker.namespaces.join(', ')}`,
        };
    const workIntake = intake();
    const ready =
      database.status === 'healthy' && worker.status === 'healthy' && workIntake.status === 'healthy';
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'healthy' : 'unhealthy',
      timestamp: now(),
      checks: { database, worker, work_intake: workIntake },
      info: { version: options.version, worker_id: options.worker.id, namespaces: options.worker.namespaces },
    });
  });
  app.get('/v1/templates', { config: { access: { permission: 'worker:templates_read' } } }, () => ({
    templates: options.templates.map((t) => ({
      namespace: t.namespace,
      name: t.name,
      version: t.version,
      description: t.description,
      step_count: t.steps.length,
    })),
  }));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      new ApiError(
        404,
        'TASKER_ROUTE_NOT_FOUND',
        `no route ${request.method} ${quoteInput(request.url.split('?')[0], 120)} on the worker; it serves /health, /health/live, /health/ready, /health/detailed, /metrics and /v1/templates`,
      ),
      request,
      reply,
      logger,
      bodyLimit,
    ),
  );
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply, logger, bodyLimit));
  await app.ready();
  return app;
}
