import type { TaskLimits } from '../domain/limits.ts';
import type { TaskerConfig } from '../config/schema.ts';
import { orchestrationCoordination, workerCoordination } from '../coordination/coordinationSettings.ts';
import type { OrchestratorOptions } from '../orchestration/orchestrator.ts';
import type { TemplateCacheOptions } from '../orchestration/templateCache.ts';
import type { WorkerOptions } from '../worker/worker.ts';

// The configuration → component options mapping of the services: the one place that says which key drives
// which knob.
/** `[database.query_cache]` → the template cache used at task creation. */
/** `[limits]` → what task creation and the worker enforce. */
export function taskLimits(config: TaskerConfig): TaskLimits {
  return {
    maxStepsPerTask: config.limits.max_steps_per_task,
    maxContextBytes: config.limits.max_context_bytes,
    maxResultBytes: config.limits.max_result_bytes,
  };
}

export function templateCacheOptions(config: TaskerConfig): TemplateCacheOptions {
  const cache = config.database.query_cache;
  return { enabled: cache.enabled, maxSize: cache.max_size, ttlSeconds: cache.ttl_seconds };
}

/** `[worker]` and `[pgmq]` → the Worker's own settings (the service adds db, provider, handlers, templates). */
export function workerRuntimeOptions(config: TaskerConfig) {
  const worker = config.worker;
  return {
    maxConcurrentHandlers: worker.max_concurrent_handlers,
    defaultTimeoutMs: worker.handler_timeout_ms,
    leaseSeconds: config.pgmq.visibility_timeout_seconds,
    shutdownTimeoutMs: worker.shutdown_timeout_ms,
    applyResultsInline: worker.apply_results_inline,
    coordination: workerCoordination(config),
    limits: taskLimits(config),
  } satisfies Partial<WorkerOptions>;
}

/** `[orchestration]` and `[pgmq]` → the Orchestrator's own settings. */
export function orchestratorRuntimeOptions(config: TaskerConfig) {
  // Each stage's drains hold a pool connection: no stage may take more than half of the pool, so the API
  // and the other stages always find one.
  const poolCap = Math.max(1, Math.floor(config.database.max_connections / 2));
  const pool = (settings: TaskerConfig['executor_pools']['task_initializer']) => ({
    minExecutors: Math.min(settings.min_executors, poolCap),
    maxExecutors: Math.min(settings.max_executors, poolCap),
    highWatermark: settings.queue_high_watermark,
    lowWatermark: settings.queue_low_watermark,
  });
  return {
    visibilityTimeoutSeconds: config.pgmq.visibility_timeout_seconds,
    coordination: orchestrationCoordination(config),
    executorPools: {
      task_initializer: pool(config.executor_pools.task_initializer),
      result_processor: pool(config.executor_pools.result_processor),
      step_enqueuer: pool(config.executor_pools.step_enqueuer),
    },
  } satisfies Partial<OrchestratorOptions>;
}
