import type { TaskerConfig } from '../config/schema.ts';
import type { OrchestratorOptions } from '../orchestration/orchestrator.ts';
import type { TemplateCacheOptions } from '../orchestration/templateCache.ts';
import type { WorkerOptions } from '../worker/worker.ts';

// The configuration → component options mapping of the services: the one place that says which key drives
// which knob.
/** `[database.query_cache]` → the template cache used at task creation. */
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
    listen: worker.hybrid.enable_event_listeners,
    pollIntervalMs: worker.hybrid.enable_polling_fallback ? worker.hybrid.polling_interval_ms : null,
  } satisfies Partial<WorkerOptions>;
}

/** `[orchestration]` and `[pgmq]` → the Orchestrator's own settings. */
export function orchestratorRuntimeOptions(config: TaskerConfig) {
  const orchestration = config.orchestration;
  return {
    visibilityTimeoutSeconds: config.pgmq.visibility_timeout_seconds,
    listen: orchestration.hybrid.enable_event_listeners,
    pollIntervalMs: orchestration.hybrid.enable_polling_fallback
      ? orchestration.hybrid.polling_interval_ms
      : null,
  } satisfies Partial<OrchestratorOptions>;
}
