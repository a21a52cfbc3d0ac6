import { assertSupportedSettings } from '../config/validateConfig.ts';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import type { RunningGrpcServer } from '../api/grpc/grpcServer.ts';
import { closeGracefully } from '../api/rest/closeGracefully.ts';
import { buildRestServer } from '../api/rest/server.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import type { Database } from '../db/database.ts';
import { NotificationListener } from '../messaging/pgmq/notificationListener.ts';
import { PgmqMessagingProvider } from '../messaging/pgmq/pgmqMessagingProvider.ts';
import { TaskCompletionWaiter } from '../api/rest/taskCompletionWaiter.ts';
import type { Logger } from '../observability/logger.ts';
import {
  countActiveTasks,
  queueMetricsAll,
  StepLatencyReader,
  TaskCompletionReader,
} from '../db/queries/taskMetrics.ts';
import { TaskerMetrics } from '../observability/metrics.ts';
import { Orchestrator } from '../orchestration/orchestrator.ts';
import { StalenessDetector, stalenessDetectorSettings } from '../orchestration/stalenessDetector.ts';
import { RetentionSweeper, retentionSweeperSettings } from '../orchestration/retentionSweeper.ts';
import { TemplateCache } from '../orchestration/templateCache.ts';
import { stopWithin } from '../resilience/gracefulShutdown.ts';
import { circuitBreakerChecks, createServiceCircuitBreakers } from '../resilience/serviceCircuitBreakers.ts';
import { parseBindAddress } from './bindAddress.ts';
import { serviceAuthenticator } from './serviceAuth.ts';
import { startServiceTracing } from './serviceTracing.ts';
import { startServiceGrpc } from './serviceGrpc.ts';
import { listenHttp } from './httpListener.ts';
import { warnWhenAutovacuumOff } from '../db/autovacuumCheck.ts';
import { openServiceDatabase } from './openServiceDatabase.ts';
import { orchestratorRuntimeOptions, taskLimits, templateCacheOptions } from './serviceOptions.ts';
import { TASKER_VERSION } from './version.ts';
import { workIntakeCheck } from './workIntakeCheck.ts';

export interface OrchestrationServiceOptions {
  loaded: LoadedConfig;
  logger: Logger;
  /** An already open database (tasker dev shares one); otherwise the service opens and owns one. */
  db?: Database;
  /** Overrides `[orchestration.web] bind_address` (tasker dev's --port). */
  bindAddress?: string;
  /** Overrides `[orchestration.grpc] bind_address`. */
  grpcBindAddress?: string;
  /**
   * A fresh metrics object to fill (its scrape-time sources are attached here); ignored when
   * `[telemetry.metrics] enabled` is false. @defaultValue a new TaskerMetrics
   */
  metrics?: TaskerMetrics;
  /** Where spans go instead of OTLP, when `[telemetry.tracing] enabled` (tests). @defaultValue OTLP/HTTP */
  spanExporter?: SpanExporter;
}

export interface OrchestrationService {
  readonly orchestrator: Orchestrator;
  /** Where the REST API listens, e.g. http://127.0.0.1:8080; undefined when `[orchestration.web]` is disabled. */
  readonly url: string | undefined;
  /** host:port of the gRPC health server; undefined when `[orchestration.grpc]` is disabled. */
  readonly grpcAddress: string | undefined;
  /** Served at /metrics; undefined when `[telemetry.metrics] enabled` is false. */
  readonly metrics: TaskerMetrics | undefined;
  /** The template cache the REST API and the task-request queue create tasks through. */
  readonly templates: TemplateCache;
  /** Wakes whoever waits for a task to finish (API long polls, embedded runs) on its notification. */
  readonly completions: TaskCompletionWaiter;
  /** Stops accepting requests and work, finishes the batch in progress, closes connections. Safe twice. */
  stop(): Promise<void>;
}

/**
 * The orchestration service: the three orchestration queues (Orchestrator), the staleness detector, the
 * retention sweeper and the REST API, over one database pool. Any number may run side by side: they coordinate
 * only through SQL.
 */
export async function startOrchestrationService(
  options: OrchestrationServiceOptions,
): Promise<OrchestrationService> {
  const { loaded, logger } = options;
  const { config } = loaded;
  // First: a service that could not check credentials must not start at all.
  assertSupportedSettings(loaded);
  const auth = serviceAuthenticator(loaded, 'orchestration', logger);
  const ownsDb = options.db === undefined;
  const directDb = options.db ?? (await openServiceDatabase(loaded));
  await warnWhenAutovacuumOff(directDb, logger);
  // Work, the API, health checks and metrics reach the database and the queues through circuit breakers. The
  // LISTEN connection uses the database directly: it reconnects with its own backoff.
  const breakers = createServiceCircuitBreakers(config.circuit_breakers, logger);
  const db = breakers.guardDatabase(directDb);
  const runtime = orchestratorRuntimeOptions(config);
  // One LISTEN connection for the process (none in PollingOnly): queue wake-ups and task-finished hints for
  // waiting API clients.
  const listener = runtime.coordination.listen
    ? new NotificationListener(directDb, { ...runtime.coordination.listener, logger })
    : null;
  const provider = breakers.guardMessaging(
    new PgmqMessagingProvider(directDb, {
      ...(listener !== null && { listener }),
      listenerOptions: runtime.coordination.listener,
      logger,
    }),
  );
  const completions = new TaskCompletionWaiter(listener, logger, {
    db,
    maxWaiters: config.orchestration.web.max_waiting_requests,
    // A quarter of the pool at most: waiting must never take the connections task creation needs.
    maxConcurrentReads: Math.max(1, Math.floor(config.database.max_connections / 4)),
  });
  const metrics = config.telemetry.metrics.enabled
    ? (options.metrics ?? new TaskerMetrics({ logger }))
    : undefined;
  const tracing = startServiceTracing({
    telemetry: config.telemetry,
    role: 'orchestration',
    logger,
    ...(options.spanExporter !== undefined && { exporter: options.spanExporter }),
  });
  // One template cache for both ways a task is created (POST /v1/tasks and orchestration_task_requests), so
  // `[database.query_cache]` governs both.
  const templates = new TemplateCache(templateCacheOptions(config));
  const limits = taskLimits(config);
  const orchestrator = new Orchestrator({
    db,
    provider,
    logger,
    templates,
    limits,
    ...runtime,
    listenerState: () => listener?.state ?? null,
    ...(metrics !== undefined && { metrics }),
    ...(tracing !== undefined && { tracing: tracing.tracing }),
  });
  breakers.onRecovered(() => {
    listener?.reconnectNow();
    orchestrator.wake();
  });
  if (metrics !== undefined) orchestrationMetrics(metrics, db, listener, orchestrator, config);
  metrics?.collectCircuitBreakers(() => breakers.snapshots());
  const staleness = config.orchestration.staleness.enabled
    ? new StalenessDetector({
        db,
        logger,
        processorUuid: orchestrator.processorUuid,
        ...stalenessDetectorSettings(config.orchestration),
        ...(metrics !== undefined && { metrics }),
      })
    : undefined;
  const retention = config.orchestration.retention.enabled
    ? new RetentionSweeper({
        db,
        logger,
        ...retentionSweeperSettings(config.orchestration),
        ...(metrics !== undefined && { metrics }),
      })
    : undefined;
  let app: FastifyInstance | undefined;
  let url: string | undefined;
  let grpcServer: RunningGrpcServer | undefined;
  let stopped: Promise<void> | undefined;
  // One readiness for /health/ready and gRPC (beside the database check both add): they must never disagree,
  // since Kubernetes may probe either.
  const readiness = {
    work_intake: workIntakeCheck(orchestrator.monitor),
    ...circuitBreakerChecks(breakers),
    orchestration_system: () =>
      Promise.resolve(
        stopped === undefined
          ? { status: 'healthy' as const }
          : { status: 'unhealthy' as const, message: 'shutting down' },
      ),
  };

  const orderlyStop = async (): Promise<void> => {
    // Probes fail first, then requests stop (in-flight ones finish), then work, then connections.
    grpcServer?.setServing(false);
    if (app !== undefined)
      await closeGracefully(app).catch((error: unknown) =>
        logger.warn({ err: error }, 'closing the HTTP server failed'),
      );
    await staleness?.stop();
    await retention?.stop();
    await orchestrator.stop();
    await grpcServer?.stop();
    await completions.stop();
    breakers.stop();
    await provider.close();
    await listener?.stop();
    if (ownsDb) await db.close();
    await tracing?.shutdown();
    logger.info('orchestration stopped');
  };
  const stop = (): Promise<void> =>
    (stopped ??= stopWithin(orderlyStop, {
      deadlineMs: config.orchestration.shutdown_timeout_ms,
      // The statements still running hold the stop up (a scrape, a sweep, a drain): cancel them on the server.
      onDeadline: () => directDb.cancelRunning(),
      logger,
    }));

  try {
    await orchestrator.start();
    await completions.start();
    staleness?.start();
    retention?.start();
    if (config.orchestration.web.enabled) {
      const server = await buildRestServer({
        db,
        ...(auth !== undefined && { auth }),
        logger,
        templates,
        limits,
        processorUuid: orchestrator.processorUuid,
        bodyLimitBytes: config.orchestration.web.body_limit_bytes,
        requestTimeoutMs: config.orchestration.web.request_timeout_ms,
        version: TASKER_VERSION,
        taskCompletionWaiter: completions,
        ...(metrics !== undefined && { metrics }),
        ...(tracing !== undefined && { tracing: tracing.tracing }),
        healthEvaluation: {
          intervalMs: config.orchestration.health.health_check_interval_ms,
          unhealthyThreshold: config.orchestration.health.unhealthy_threshold,
          recoveryThreshold: config.orchestration.health.recovery_threshold,
        },
        healthSources: {
          coordination: orchestrator.monitor,
          executors: () => orchestrator.executorSnapshots(),
          circuitBreakers: () => breakers.snapshots(),
        },
        readinessChecks: readiness,
      });
      const bind = parseBindAddress(
        options.bindAddress ?? config.orchestration.web.bind_address,
        'orchestration.web.bind_address',
      );
      app = server;
      url = await listenHttp(server, bind);
    }
    grpcServer = await startServiceGrpc({
      role: 'orchestration',
      loaded,
      db,
      logger,
      bindAddress: options.grpcBindAddress,
      checks: readiness,
      info: { processor_uuid: orchestrator.processorUuid },
    });
  } catch (error) {
    await stop();
    throw error;
  }
  logger.info(
    { url, grpc: grpcServer?.address, environment: loaded.environment, version: TASKER_VERSION },
    'orchestration service started',
  );
  return {
    orchestrator,
    get url() {
      return url;
    },
    get grpcAddress() {
      return grpcServer?.address;
    },
    metrics,
    templates,
    completions,
    stop,
  };
}

/**
 * Scrape-time sources of the orchestration process: its pool and LISTEN connection, and database-wide
 * counts (active tasks, queue depths, finished tasks) that every orchestrator reports alike.
 */
function orchestrationMetrics(
  metrics: TaskerMetrics,
  db: Database,
  listener: NotificationListener | null,
  orchestrator: Orchestrator,
  config: LoadedConfig['config'],
): TaskerMetrics {
  metrics.collectPool(() => db.poolStats());
  metrics.collectListener(config.orchestration.deployment_mode, () => listener?.state ?? null);
  metrics.collectCoordination(orchestrator.monitor);
  metrics.collectQueueDepths(() => queueMetricsAll(db));
  metrics.collectActiveTasks(() => countActiveTasks(db));
  const finished = new TaskCompletionReader(db, { sinceMs: Date.now(), settleMs: TASK_COMPLETION_SETTLE_MS });
  metrics.collectTaskCompletions(async () =>
    (await finished.read()).map((row) => ({ ...row, outcome: row.state })),
  );
  const started = new StepLatencyReader(db, { sinceMs: Date.now(), settleMs: TASK_COMPLETION_SETTLE_MS });
  metrics.collectStepLatencies(() => started.read());
  return metrics;
}

/** Finished tasks are counted this long after their final transition (see TaskCompletionReader). */
const TASK_COMPLETION_SETTLE_MS = 5_000;
