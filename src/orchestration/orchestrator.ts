import type { TaskLimits } from '../domain/limits.ts';
import { hostname } from 'node:os';
import type { Database } from '../db/database.ts';
import { processFinalizationRequests, processStepResults } from '../db/queries/orchestrationQueues.ts';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.ts';
import { uuidv7 } from '../domain/identity/uuidV7.ts';
import type { MessagingProvider } from '../messaging/messagingProvider.ts';
import type { CoordinationMonitor } from '../coordination/coordinationMonitor.ts';
import type { ListenerStateSource } from '../coordination/coordinationMonitor.ts';
import { defaultCoordination } from '../coordination/coordinationSettings.ts';
import type { OrchestrationCoordination } from '../coordination/coordinationSettings.ts';
import { ExecutorPool } from '../coordination/executorPool.ts';
import type { ExecutorPoolSettings, ExecutorPoolSnapshot } from '../coordination/executorPool.ts';
import { roleCoordination } from '../coordination/roleMonitor.ts';
import { QueueConsumer } from '../coordination/queueConsumer.ts';
import type { DrainReport, DrainTrigger } from '../coordination/queueConsumer.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';
import type { TaskerTracing } from '../observability/tracing.ts';
import { createTask } from './taskInitializer.ts';
import type { TemplateCache } from './templateCache.ts';

export const STEP_RESULTS_QUEUE = 'orchestration_step_results';
export const TASK_REQUESTS_QUEUE = 'orchestration_task_requests';
const FINALIZATIONS_QUEUE = 'orchestration_task_finalizations';

export interface OrchestratorOptions {
  db: Database;
  provider: MessagingProvider;
  logger?: Logger;
  /** `[limits]` task creation enforces. @defaultValue DEFAULT_TASK_LIMITS */
  limits?: TaskLimits;
  /** Messages read per queue read when woken by a notification. @defaultValue 50 */
  batchSize?: number;
  /** Seconds a read message stays hidden while it is processed. @defaultValue 30 */
  visibilityTimeoutSeconds?: number;
  /**
   * Deployment mode and its settings (services: `orchestrationCoordination(config)`). Without it: Hybrid,
   * listening unless `listen` is false, polling every `pollIntervalMs`.
   */
  coordination?: OrchestrationCoordination;
  /** LISTEN for queue notifications (only without `coordination`). @defaultValue true */
  listen?: boolean;
  /** Safety-net polling of the three queues, null disables (only without `coordination`). @defaultValue 1000 */
  pollIntervalMs?: number | null;
  /** The LISTEN connection's state, for Hybrid's fallback decision and health. @defaultValue the provider's */
  listenerState?: ListenerStateSource;
  /** Concurrency of the three stages. @defaultValue one drain at a time each */
  executorPools?: Partial<Record<OrchestrationStage, Omit<ExecutorPoolSettings, 'name'>>>;
  /** How often the executor pools sample their queue's depth. @defaultValue 1000 */
  poolSampleIntervalMs?: number;
  /** Counts tasks created from orchestration_task_requests, and the mode's metrics. @defaultValue none */
  metrics?: TaskerMetrics;
  /** Traces tasks created from orchestration_task_requests. @defaultValue none: no spans */
  tracing?: TaskerTracing;
  /**
   * Where tasks created from orchestration_task_requests look their template up (the service passes the
   * cache its REST API uses, built from `[database.query_cache]`). @defaultValue createTask's own
   */
  templates?: TemplateCache;
}

/** The orchestration stages, each consuming one queue with an executor pool of its own. */
export type OrchestrationStage = 'task_initializer' | 'result_processor' | 'step_enqueuer';

const STAGE_QUEUES: Record<OrchestrationStage, string> = {
  task_initializer: TASK_REQUESTS_QUEUE,
  result_processor: STEP_RESULTS_QUEUE,
  step_enqueuer: FINALIZATIONS_QUEUE,
};

interface TaskRequestMessage {
  request_id?: string;
  task_request?: unknown;
  /** The producer's W3C traceparent, linked from the task's root span. */
  traceparent?: unknown;
}

interface Stage {
  name: OrchestrationStage;
  queue: string;
  pool: ExecutorPool;
  consumer: QueueConsumer;
}

/**
 * The orchestration role at library level: consumes its three queues (reference §6.1), each as a stage with
 * an executor pool of its own — task requests from any producer (task_initializer: created exactly like API
 * requests), step results (result_processor: applied exactly once, next steps enqueued, tasks finalized) and
 * finalization requests (step_enqueuer: ready steps enqueued, the task re-evaluated). How each stage learns
 * of work is the deployment mode's business (QueueConsumer, CoordinationMonitor). Replicas need no
 * coordination: every effect is a compare-and-set inside one SQL function.
 */
export class Orchestrator {
  readonly processorUuid = uuidv7();
  readonly id = `${hostname()}-${process.pid}-orchestrator-${this.processorUuid.slice(-8)}`;
  readonly monitor: CoordinationMonitor;
  private readonly options: OrchestratorOptions;
  private readonly logger: Logger;
  private readonly stages: Stage[];
  private readonly coordination: OrchestrationCoordination;
  private sampler: NodeJS.Timeout | null = null;

  constructor(options: OrchestratorOptions) {
    this.options = options;
    this.logger = (options.logger ?? silentLogger).child({
      component: 'orchestrator',
      processor_uuid: this.processorUuid,
    });
    this.coordination = options.coordination ?? libraryCoordination(options);
    const { monitor, consumerMetrics } = roleCoordination({
      settings: this.coordination,
      provider: options.provider,
      listenerState: options.listenerState,
      logger: this.logger,
      metrics: options.metrics,
    });
    this.monitor = monitor;
    const intervals: Record<OrchestrationStage, number> = {
      task_initializer: this.coordination.pollIntervalMs.taskRequests,
      result_processor: this.coordination.pollIntervalMs.stepResults,
      step_enqueuer: this.coordination.pollIntervalMs.finalizations,
    };
    this.stages = (Object.keys(STAGE_QUEUES) as OrchestrationStage[]).map((name) => {
      const queue = STAGE_QUEUES[name];
      const poolSettings = options.executorPools?.[name];
      const pool = new ExecutorPool({
        name,
        minExecutors: poolSettings?.minExecutors ?? 1,
        maxExecutors: poolSettings?.maxExecutors ?? 1,
        highWatermark: poolSettings?.highWatermark ?? Number.POSITIVE_INFINITY,
        lowWatermark: poolSettings?.lowWatermark ?? 0,
      });
      const consumer = new QueueConsumer({
        name: queue,
        provider: options.provider,
        queues: [queue],
        drain: (trigger) => this.drainStage(name, trigger),
        monitor: this.monitor,
        pollIntervalMs: intervals[name],
        ...(name === 'result_processor' &&
          !this.coordination.stepResultListeners && { listen: false, poll: true }),
        pool,
        logger: this.logger,
        ...consumerMetrics,
      });
      return { name, queue, pool, consumer };
    });
  }

  /** Safe to call twice. */
  async start(): Promise<void> {
    this.monitor.start();
    for (const stage of this.stages) await stage.consumer.start();
    if (this.options.executorPools !== undefined && this.sampler === null) {
      this.sampler = setInterval(() => void this.sampleDepths(), this.options.poolSampleIntervalMs ?? 1_000);
      this.sampler.unref();
    }
    this.logger.info(
      {
        deployment_mode: this.coordination.mode,
        listen: this.coordination.listen,
        poll: this.coordination.poll,
      },
      'orchestrator started',
    );
  }

  /**
   * Drains every queue now instead of at the next poll or error backoff: the database or the queues are back
   * after an outage (a circuit breaker lets calls through again), and work queued meanwhile should not wait.
   */
  wake(): void {
    for (const stage of this.stages) stage.consumer.wake();
  }

  /** Finishes the drains in progress, then stops. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.sampler !== null) clearInterval(this.sampler);
    this.sampler = null;
    this.monitor.stop();
    await Promise.all(this.stages.map((stage) => stage.consumer.stop()));
  }

  /** The three stages' executor pools (for /health/detailed). */
  executorSnapshots(): Record<OrchestrationStage, ExecutorPoolSnapshot> {
    const entries = this.stages.map((stage) => [stage.name, stage.pool.snapshot()] as const);
    return Object.fromEntries(entries) as Record<OrchestrationStage, ExecutorPoolSnapshot>;
  }

  private async drainStage(stage: OrchestrationStage, trigger: DrainTrigger): Promise<DrainReport> {
    const batch = trigger === 'poll' ? this.coordination.batchSize : (this.options.batchSize ?? 50);
    const vt = this.options.visibilityTimeoutSeconds ?? 30;
    let handled: number;
    switch (stage) {
      case 'result_processor': {
        const started = performance.now();
        handled = await processStepResults(this.options.db, batch, vt, this.processorUuid);
        if (handled > 0) {
          this.options.metrics?.stepDiscoveryDuration.observe(
            { role: 'orchestration' },
            (performance.now() - started) / 1000,
          );
        }
        break;
      }
      case 'step_enqueuer':
        handled = await processFinalizationRequests(this.options.db, batch, vt, this.processorUuid);
        break;
      case 'task_initializer':
        handled = await this.processTaskRequests(batch, vt);
        break;
    }
    return { found: handled, processed: handled, full: handled >= batch };
  }

  private async sampleDepths(): Promise<void> {
    for (const stage of this.stages) {
      try {
        const depth = await this.options.provider.queueDepth(stage.queue);
        stage.pool.observeDepth(depth.visible);
      } catch (error) {
        this.logger.debug({ err: error, queue: stage.queue }, 'queue depth sample failed');
      }
    }
  }

  private async processTaskRequests(batch: number, vt: number): Promise<number> {
    const messages = await this.options.provider.receive<TaskRequestMessage>(TASK_REQUESTS_QUEUE, {
      limit: batch,
      visibilityTimeoutSeconds: vt,
    });
    for (const [index, message] of messages.entries()) {
      const payload: unknown = message.payload;
      const body =
        typeof payload === 'object' && payload !== null && 'task_request' in payload
          ? (payload as TaskRequestMessage).task_request
          : payload;
      try {
        await createTask(this.options.db, body, {
          ...(this.options.templates !== undefined && { templates: this.options.templates }),
          ...(this.options.limits !== undefined && { limits: this.options.limits }),
          processorUuid: this.processorUuid,
          requestMsgId: message.id,
          ...(this.options.metrics !== undefined && { metrics: this.options.metrics }),
          ...(this.options.tracing !== undefined && {
            tracing: this.options.tracing,
            source: 'queue' as const,
            traceparent: (payload as TaskRequestMessage | null)?.traceparent,
          }),
        });
      } catch (error) {
        if (!isRequestRefusal(error)) {
          // The database or the queue failed, not the request (an outage, a timeout): this message and the rest
          // of the batch go back to the queue, visible again in a second, and the drain fails into its backoff.
          // Archiving them as rejected would lose tasks their senders were promised.
          await Promise.all(
            messages
              .slice(index)
              .map((pending) =>
                this.options.provider
                  .nack(TASK_REQUESTS_QUEUE, pending.id, { delaySeconds: 1 })
                  .catch(() => undefined),
              ),
          );
          throw error;
        }
        // A request that can never become a task (bad input, unknown template, duplicate) is archived with
        // the reason logged; it stays in a_orchestration_task_requests for inspection.
        this.logger.warn(
          {
            request_id: (payload as TaskRequestMessage | null)?.request_id,
            msg_id: message.id,
            code: error.code,
            err: error.message,
          },
          'task request rejected',
        );
        await this.options.provider.ack(TASK_REQUESTS_QUEUE, message.id);
      }
    }
    return messages.length;
  }
}

/** Library use without a configuration: Hybrid (or polling only with listen: false), one interval for all. */
function libraryCoordination(options: OrchestratorOptions): OrchestrationCoordination {
  const interval = options.pollIntervalMs === undefined ? 1_000 : options.pollIntervalMs;
  const base = defaultCoordination(interval);
  const every = interval ?? 1_000;
  return {
    ...base,
    listen: options.listen ?? true,
    batchSize: options.batchSize ?? 50,
    pollIntervalMs: { taskRequests: every, stepResults: every, finalizations: every },
    stepResultListeners: true,
  };
}

/**
 * Whether creating a task failed because of the request itself (bad input, an unknown template, a limit, a
 * duplicate): then it never will succeed and is archived. Anything else (the database, the queue) is transient.
 */
function isRequestRefusal(error: unknown): error is ValidationError | NotFoundError | ConflictError {
  return error instanceof ValidationError || error instanceof NotFoundError || error instanceof ConflictError;
}
