import { assertSupportedSettings } from '../config/validateConfig.ts';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import type { RunningGrpcServer } from '../api/grpc/grpcServer.ts';
import { closeGracefully } from '../api/rest/closeGracefully.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import type { Database } from '../db/database.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import { loadTemplates } from '../domain/template/templateLoader.ts';
import { PgmqMessagingProvider } from '../messaging/pgmq/pgmqMessagingProvider.ts';
import type { Logger } from '../observability/logger.ts';
import { workerQueueName } from '../messaging/queueName.ts';
import { TaskerMetrics } from '../observability/metrics.ts';
import type { StepHandlerDefinition } from '../worker/handlerApi.ts';
import { Worker } from '../worker/worker.ts';
import type { StepFailureReport } from '../worker/worker.ts';
import type { Workflow } from '../worker/workflow.ts';
import { circuitBreakerChecks, createServiceCircuitBreakers } from '../resilience/serviceCircuitBreakers.ts';
import { parseBindAddress } from './bindAddress.ts';
import { serviceAuthenticator } from './serviceAuth.ts';
import { startServiceGrpc } from './serviceGrpc.ts';
import { startServiceTracing } from './serviceTracing.ts';
import { combineTemplates, loadWorkerModule } from './handlerModule.ts';
import { listenHttp } from './httpListener.ts';
import { openServiceDatabase } from './openServiceDatabase.ts';
import { workerRuntimeOptions } from './serviceOptions.ts';
import { TASKER_VERSION } from './version.ts';
import { workIntakeCheck } from './workIntakeCheck.ts';
import { buildWorkerHttp } from './workerHttp.ts';

export interface WorkerServiceOptions {
  loaded: LoadedConfig;
  logger: Logger;
  /** Handlers given directly (tasker dev); otherwise loaded from `[worker] handlers_module`. */
  handlers?: readonly StepHandlerDefinition[];
  /** Templates given directly; otherwise read from `[worker] template_paths`. */
  templates?: readonly TaskTemplate[];
  /**
   * Workflows defined in code, served beside the templates and the handlers module's workflows (their
   * handlers are added to the handlers).
   */
  workflows?: readonly Workflow<never, unknown, unknown>[];
  db?: Database;
  /** Overrides `[worker.web] bind_address`. */
  bindAddress?: string;
  /** Overrides `[worker.grpc] bind_address`. */
  grpcBindAddress?: string;
  /**
   * A fresh metrics object to fill (its scrape-time sources are attached here); ignored when
   * `[telemetry.metrics] enabled` is false. @defaultValue a new TaskerMetrics
   */
  metrics?: TaskerMetrics;
  /** Where spans go instead of OTLP, when `[telemetry.tracing] enabled` (tests). @defaultValue OTLP/HTTP */
  spanExporter?: SpanExporter;
  /** How each failed attempt is reported (tasker dev prints it). @defaultValue a warn line on `logger` */
  onStepFailure?: (report: StepFailureReport) => void;
}

export interface WorkerService {
  readonly worker: Worker;
  readonly templates: readonly TaskTemplate[];
  readonly handlers: readonly StepHandlerDefinition[];
  readonly url: string | undefined;
  /** Served at /metrics; undefined when `[telemetry.metrics] enabled` is false. */
  readonly metrics: TaskerMetrics | undefined;
  /** Stops claiming, lets running handlers finish within `[worker] shutdown_timeout_ms`, hands the rest back. */
  stop(): Promise<void>;
}

/**
 * The worker service: loads its handlers and templates, registers the templates, serves its namespaces and a
 * health endpoint. Nothing here decides workflow state; that is SQL the worker calls.
 * @throws ValidationError TASKER_HANDLERS_MODULE_INVALID / TASKER_UNKNOWN_HANDLER, TemplateError (also when a
 *   workflow and a YAML template define one namespace, name and version), DatabaseError
 */
export async function startWorkerService(options: WorkerServiceOptions): Promise<WorkerService> {
  const { loaded, logger } = options;
  const { config } = loaded;
  // First: a service that could not check credentials must not start at all.
  assertSupportedSettings(loaded);
  const auth = serviceAuthenticator(loaded, 'worker', logger);
  const module =
    options.handlers !== undefined || config.worker.handlers_module === ''
      ? { handlers: options.handlers ?? [], workflowTemplates: [] }
      : await loadWorkerModule(config.worker.handlers_module);
  const yamlTemplates =
    options.templates ??
    (config.worker.template_paths.length === 0 ? [] : loadTemplates(config.worker.template_paths).templates);
  const yamlSource =
    options.templates !== undefined
      ? 'a template given to the worker'
      : `a YAML template under ${config.worker.template_paths.join(', ')}`;
  const workflows = options.workflows ?? [];
  // Workflows defined in code are served like YAML templates; one template defined both ways is refused.
  const templates = combineTemplates([
    ...yamlTemplates.map((template) => ({ template, source: yamlSource })),
    ...module.workflowTemplates.map((template) => ({
      template,
      source: `workflow ${template.namespace}/${template.name}@${template.version} in ${config.worker.handlers_module}`,
    })),
    ...workflows.map((flow) => ({ template: flow.template(), source: `workflow ${flow.label}` })),
  ]);
  const handlers = [...module.handlers, ...workflows.flatMap((flow) => flow.handlers())];
  const ownsDb = options.db === undefined;
  const directDb = options.db ?? (await openServiceDatabase(loaded));
  // Claims, results, heartbeats and health checks go through circuit breakers; the provider's LISTEN
  // connection uses the database directly (it reconnects with its own backoff).
  const breakers = createServiceCircuitBreakers(config.circuit_breakers, logger);
  const db = breakers.guardDatabase(directDb);
  const runtime = workerRuntimeOptions(config);
  const provider = breakers.guardMessaging(
    new PgmqMessagingProvider(directDb, { listenerOptions: runtime.coordination.listener, logger }),
  );
  const metrics = config.telemetry.metrics.enabled
    ? (options.metrics ?? new TaskerMetrics({ logger }))
    : undefined;
  const tracing = startServiceTracing({
    telemetry: config.telemetry,
    role: 'worker',
    logger,
    ...(options.spanExporter !== undefined && { exporter: options.spanExporter }),
  });
  let worker: Worker;
  try {
    worker = new Worker({
      db,
      provider,
      handlers,
      templates,
      ...(config.worker.namespaces.length > 0 && { namespaces: config.worker.namespaces }),
      logger,
      version: TASKER_VERSION,
      ...(options.onStepFailure !== undefined && { onStepFailure: options.onStepFailure }),
      ...runtime,
      // The provider's own LISTEN connection (it opens it on the first subscribe): Hybrid watches it.
      listenerState: () => provider.notificationListener?.state ?? null,
      ...(metrics !== undefined && { metrics }),
      ...(tracing !== undefined && { tracing: tracing.tracing }),
    });
  } catch (error) {
    await provider.close();
    await tracing?.shutdown();
    if (ownsDb) await db.close();
    throw error;
  }
  breakers.onRecovered(() => {
    provider.notificationListener?.reconnectNow();
    worker.wake();
  });
  if (metrics !== undefined) {
    metrics.collectPool(() => db.poolStats());
    metrics.collectCircuitBreakers(() => breakers.snapshots());
    metrics.collectWorker(worker);
    metrics.collectCoordination(worker.monitor);
    metrics.collectListener(
      config.worker.deployment_mode,
      () => provider.notificationListener?.state ?? null,
    );
    metrics.collectQueueDepths(() =>
      Promise.all(
        worker.namespaces.map(async (namespace) => {
          const queue = workerQueueName(namespace);
          const depth = await provider.queueDepth(queue);
          return { queue, depth: depth.total, oldestAgeSeconds: depth.oldestAgeSeconds };
        }),
      ),
    );
  }
  let app: FastifyInstance | undefined;
  let url: string | undefined;
  let grpcServer: RunningGrpcServer | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      // Probes fail first; then work: the lease hand-back must happen while the database is still open.
      grpcServer?.setServing(false);
      await worker.stop();
      await grpcServer?.stop();
      if (app !== undefined)
        await closeGracefully(app).catch((error: unknown) =>
          logger.warn({ err: error }, 'closing the HTTP server failed'),
        );
      breakers.stop();
      await provider.close();
      if (ownsDb) await db.close();
      await tracing?.shutdown();
      logger.info('worker stopped');
    })());
  try {
    await worker.start();
    if (config.worker.web.enabled) {
      app = await buildWorkerHttp({
        db,
        ...(auth !== undefined && { auth }),
        worker,
        templates,
        version: TASKER_VERSION,
        isStopping: () => stopped !== undefined,
        healthSources: { coordination: worker.monitor, circuitBreakers: () => breakers.snapshots() },
        bodyLimitBytes: config.worker.web.body_limit_bytes,
        requestTimeoutMs: config.worker.web.request_timeout_ms,
        ...(metrics !== undefined && { metrics }),
        logger,
      });
      url = await listenHttp(
        app,
        parseBindAddress(options.bindAddress ?? config.worker.web.bind_address, 'worker.web.bind_address'),
      );
    }
    grpcServer = await startServiceGrpc({
      role: 'worker',
      loaded,
      db,
      logger,
      bindAddress: options.grpcBindAddress,
      checks: {
        // Readiness means work can reach this worker: EventDrivenOnly with its listener down cannot take any.
        work_intake: workIntakeCheck(worker.monitor),
        ...circuitBreakerChecks(breakers),
        worker: () =>
          Promise.resolve(
            stopped === undefined
              ? { status: 'healthy' as const, message: `${worker.activeExecutions} step(s) running` }
              : { status: 'unhealthy' as const, message: 'shutting down' },
          ),
      },
      info: { worker_id: worker.id, namespaces: worker.namespaces.join(',') },
    });
  } catch (error) {
    await stop();
    throw error;
  }
  logger.info(
    {
      url,
      grpc: grpcServer?.address,
      namespaces: worker.namespaces,
      handlers: handlers.length,
      templates: templates.length,
    },
    'worker service started',
  );
  return {
    worker,
    templates,
    handlers,
    get url() {
      return url;
    },
    metrics,
    stop,
  };
}
