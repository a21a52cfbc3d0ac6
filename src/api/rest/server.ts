/**
 * The orchestration REST API v1 as a fastify app, built and ready for the service process to `.listen()`.
 * See docs/api.md for the endpoints and docs/errors.md for the error codes.
 */
import { DEFAULT_TASK_LIMITS } from '../../domain/limits.ts';
import type { TaskLimits } from '../../domain/limits.ts';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify from 'fastify';
import type { FastifyInstance, RawServerDefault } from 'fastify';
import type { Database } from '../../db/database.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { registerRouteAccess, SECURITY_SCHEMES } from '../auth/routeAccess.ts';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';
import type { TaskerMetrics } from '../../observability/metrics.ts';
import type { TaskerTracing } from '../../observability/tracing.ts';
import { TemplateCache } from '../../orchestration/templateCache.ts';
import { ApiError, quoteInput } from './apiError.ts';
import { sendError } from './errorHandler.ts';
import { registerJsonBodyParser } from './jsonBody.ts';
import type { RestContext } from './restContext.ts';
import { RouteTable } from './routeTable.ts';
import { registerDlqRoutes } from './routes/dlqRoutes.ts';
import { registerHealthRoutes } from './routes/healthRoutes.ts';
import type { HealthEvaluatorSettings } from './healthEvaluator.ts';
import type { HealthStatus } from './routes/healthRoutes.ts';
import type { HealthSources } from './healthReport.ts';
import { registerMetricsRoute } from './routes/metricsRoute.ts';
import { registerStepRoutes } from './routes/stepRoutes.ts';
import { registerTaskRoutes } from './routes/taskRoutes.ts';
import { registerTemplateRoutes } from './routes/templateRoutes.ts';
import { registerWorkerRoutes } from './routes/workerRoutes.ts';
import type { TaskCompletionWaiter } from './taskCompletionWaiter.ts';
import { hardenHttp, protocolOptions } from './httpProtocol.ts';

export interface RestServerOptions {
  db: Database;
  /** Per-request lines at debug, unexpected errors at error with the request id. @defaultValue silent */
  logger?: Logger;
  /** Where task creation looks templates up. @defaultValue a TemplateCache of this server with default settings */
  templates?: TemplateCache;
  /** `[limits]` task creation enforces. @defaultValue DEFAULT_TASK_LIMITS */
  limits?: TaskLimits;
  /** Recorded on the transitions this API causes (create, cancel, step actions). */
  processorUuid?: string;
  /** Larger bodies are refused with 413. @defaultValue 1048576 (1 MiB) */
  bodyLimitBytes?: number;
  /** A request not answered within this time gets 503 TASKER_REQUEST_TIMEOUT. @defaultValue 30000 */
  requestTimeoutMs?: number;
  /**
   * Returns seconds to wait when the service must shed load (→ 503 + Retry-After on task creation), or null.
   * @defaultValue more than 2 × pool size requests waiting for a database connection → 1
   */
  backpressure?: () => number | null;
  /** Extra health checks merged into /health/ready (the service adds listener state etc.). */
  readinessChecks?: Record<string, () => Promise<{ status: HealthStatus; message?: string }>>;
  /** How the service learns of work, for /health/detailed. @defaultValue none (sections left out) */
  healthSources?: HealthSources;
  /** `[orchestration.health]`: /health reports its checks with this hysteresis. @defaultValue none */
  healthEvaluation?: HealthEvaluatorSettings;
  /** Shown in the OpenAPI document and /health/ready. */
  version?: string;
  /**
   * Answers `GET /v1/tasks/{uuid}?wait=N` as soon as the task finishes (a NOTIFY wakes it); the service
   * starts and stops it. @defaultValue none: waiting requests re-read the task every 250 ms
   */
  taskCompletionWaiter?: TaskCompletionWaiter;
  /**
   * Serves `GET /metrics` from it and counts HTTP requests and created tasks into it.
   * @defaultValue none: no /metrics route, nothing counted
   */
  metrics?: TaskerMetrics;
  /**
   * POST /v1/tasks starts the task's trace here, linked to the request's `traceparent` header.
   * @defaultValue none: no spans
   */
  tracing?: TaskerTracing;
  /**
   * Credentials each route needs (`[orchestration.web.auth]`), checked before the body is read.
   * @defaultValue none: every route open
   */
  auth?: Authenticator;
}

const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

function defaultBackpressure(db: Database): () => number | null {
  return () => {
    const stats = db.poolStats();
    return stats.waiting > 2 * stats.max ? 1 : null;
  };
}

export async function buildRestServer(options: RestServerOptions): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const logger = options.logger ?? silentLogger;
  const ctx: RestContext = {
    db: options.db,
    logger,
    templates: options.templates ?? new TemplateCache(),
    limits: options.limits ?? DEFAULT_TASK_LIMITS,
    processorUuid: options.processorUuid,
    backpressure: options.backpressure ?? defaultBackpressure(options.db),
    completionWaiter: options.taskCompletionWaiter,
    metrics: options.metrics,
    tracing: options.tracing,
    maxWaitMs: Math.max(0, timeoutMs - 1_000),
  };

  const app: FastifyInstance<RawServerDefault> = Fastify({
    logger: false,
    bodyLimit,
    handlerTimeout: timeoutMs,
    // Socket level: the whole request must arrive within the same time.
    requestTimeout: timeoutMs,
    ...protocolOptions(logger),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 100 },
    // Bad percent-encoding and over-long path parameters: same error body as everything else.
    frameworkErrors: (error, request, reply) => {
      void sendError(error, request, reply, logger, bodyLimit);
    },
  });

  const routes = new RouteTable();
  routes.track(app);
  hardenHttp(app, logger);
  registerJsonBodyParser(app, bodyLimit);
  // After the request-id hook (refusals carry the id), before any route (each must declare its access).
  registerRouteAccess(app, options.auth);

  app.addHook('onResponse', (request, reply, done) => {
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        {
          request_id: request.id,
          method: request.method,
          url: request.url,
          route: request.routeOptions.url,
          status: reply.statusCode,
          duration_ms: Math.round(reply.elapsedTime * 100) / 100,
        },
        'http request',
      );
    }
    done();
  });

  app.setErrorHandler((error, request, reply) => sendError(error, request, reply, logger, bodyLimit));

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = routes.allowedMethods(path);
    if (allowed.includes('GET') && !allowed.includes('HEAD')) allowed.push('HEAD');
    // A route with this method matched and found nothing (a missing file under /api-docs/static/): a 404.
    const routeMatched = allowed.includes(request.method);
    const error =
      allowed.length > 0 && !routeMatched
        ? new ApiError(
            405,
            'TASKER_METHOD_NOT_ALLOWED',
            `${request.method} is not allowed on ${quoteInput(path, 120)}; allowed methods: ${allowed.join(', ')}`,
            { headers: { allow: allowed.join(', ') }, details: { allowed_methods: allowed } },
          )
        : new ApiError(
            404,
            'TASKER_ROUTE_NOT_FOUND',
            routeMatched
              ? `nothing at ${quoteInput(path, 120)}; check the path (see /api-docs for every route)`
              : `no route ${request.method} ${quoteInput(path, 120)}; the API is under /v1 (see /api-docs for every route)`,
          );
    return sendError(error, request, reply, logger, bodyLimit);
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      components: { securitySchemes: SECURITY_SCHEMES },
      info: {
        title: 'Tasker orchestration API',
        version: options.version ?? '0.0.0',
        description:
          'Create and follow DAG workflow tasks, act on steps, inspect templates and the dead-letter queue. ' +
          'Errors are `{"error": {"code", "message", "details"}}` with stable codes (docs/errors.md).',
      },
      tags: [
        { name: 'tasks', description: 'Tasks: create, list, inspect, cancel' },
        { name: 'steps', description: 'Workflow steps and operator actions' },
        { name: 'templates', description: 'Registered task templates' },
        { name: 'workers', description: 'Live workers and the namespaces they serve' },
        { name: 'dlq', description: 'Dead-letter queue investigation' },
        { name: 'health', description: 'Probes' },
      ],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/api-docs' });

  if (options.metrics !== undefined) registerMetricsRoute(app, options.metrics);
  registerTaskRoutes(app, ctx);
  registerStepRoutes(app, ctx);
  registerTemplateRoutes(app, ctx);
  registerWorkerRoutes(app, ctx);
  registerDlqRoutes(app, ctx);
  registerHealthRoutes(app, ctx, {
    readinessChecks: options.readinessChecks ?? {},
    version: options.version,
    healthSources: options.healthSources,
    healthEvaluation: options.healthEvaluation,
  });
  app.get('/api-docs/openapi.json', { schema: { hide: true } }, () => app.swagger());

  await app.ready();
  return app;
}
