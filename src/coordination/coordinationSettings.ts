import type { DeploymentMode, TaskerConfig } from '../config/schema.ts';
import type { NotificationListenerOptions } from '../messaging/pgmq/notificationListener.ts';

/**
 * How one role (orchestration or worker) of one process learns of work: its deployment mode and the settings
 * of that mode, taken from `[<role>.hybrid]`, `[<role>.event_driven]` or `[<role>.polling]`. The one place
 * that turns those keys into behaviour (docs/deployment-modes.md says what each mode does).
 */
export interface CoordinationSettings {
  mode: DeploymentMode;
  /** LISTEN for queue notifications (EventDrivenOnly; Hybrid with enable_event_listeners). */
  listen: boolean;
  /**
   * Poll at all (PollingOnly; Hybrid with enable_polling_fallback). The interval per queue is the consumer's
   * (PollingOnly: `[<role>.polling]`; Hybrid: `polling_interval_ms` for every queue).
   */
  poll: boolean;
  /** Hybrid: a listener down, failing its self-test or lagging this long switches polling to active fallback. */
  fallbackThresholdMs: number;
  /** Messages read per poll-triggered queue read. */
  batchSize: number;
  /** Most messages one polling cycle handles before it yields to the next cycle. */
  maxMessagesPerPoll: number;
  /** Wait after a failed drain: base × multiplier^(failures − 1), capped. */
  errorBackoff: ErrorBackoff;
  /** The LISTEN connection of the role (reconnect interval and attempts, health-check interval). */
  listener: NotificationListenerOptions;
}

export interface ErrorBackoff {
  baseMs: number;
  maxMs: number;
  multiplier: number;
}

/** Per queue: how often it is polled (PollingOnly's own interval, or Hybrid's one safety-net interval). */
export interface OrchestrationCoordination extends CoordinationSettings {
  pollIntervalMs: { taskRequests: number; stepResults: number; finalizations: number };
  /**
   * LISTEN on orchestration_step_results (`[orchestration.worker_events] enable_worker_listeners`); without
   * it that queue is polled in every mode.
   */
  stepResultListeners: boolean;
}

export interface WorkerCoordination extends CoordinationSettings {
  pollIntervalMs: number;
}

/** Only the role's listener settings differ per mode; the timeout and the backoff cap are `[pgmq]`'s. */
function listenerSettings(
  config: TaskerConfig,
  mode: DeploymentMode,
  role: TaskerConfig['orchestration'] | TaskerConfig['worker'],
): NotificationListenerOptions {
  const shared = {
    heartbeatTimeoutMs: config.pgmq.heartbeat_timeout_ms,
    reconnectMaxMs: config.pgmq.reconnect_max_ms,
  };
  if (mode === 'EventDrivenOnly') {
    const settings = role.event_driven;
    return {
      ...shared,
      reconnectBaseMs: settings.listener_reconnect_interval_ms,
      heartbeatIntervalMs: settings.listener_health_check_interval_ms,
      maxReconnectAttempts: settings.max_reconnect_attempts,
      ...('connection_timeout_ms' in settings && { connectTimeoutMs: settings.connection_timeout_ms }),
    };
  }
  // Hybrid (and PollingOnly, which opens no listener for queues): polling covers an absent listener, so it
  // keeps trying for as long as the process runs.
  return {
    ...shared,
    reconnectBaseMs: role.hybrid.listener_reconnect_interval_ms,
    heartbeatIntervalMs: role.hybrid.listener_health_check_interval_ms,
  };
}

function backoff(polling: {
  error_backoff_base_ms: number;
  error_backoff_max_ms: number;
  error_backoff_multiplier: number;
}): ErrorBackoff {
  return {
    baseMs: polling.error_backoff_base_ms,
    maxMs: polling.error_backoff_max_ms,
    multiplier: polling.error_backoff_multiplier,
  };
}

/** `[orchestration]` → how the orchestrator consumes its three queues. */
export function orchestrationCoordination(config: TaskerConfig): OrchestrationCoordination {
  const role = config.orchestration;
  const mode = role.deployment_mode;
  const polling = role.polling;
  const hybrid = role.hybrid;
  const stepResultListeners = role.worker_events.enable_worker_listeners;
  const pollIntervalMs =
    mode === 'PollingOnly'
      ? {
          taskRequests: polling.task_request_poll_interval_ms,
          stepResults: polling.step_result_poll_interval_ms,
          finalizations: polling.finalization_poll_interval_ms,
        }
      : {
          taskRequests: hybrid.polling_interval_ms,
          // EventDrivenOnly without worker listeners polls that one queue at PollingOnly's interval.
          stepResults:
            mode === 'EventDrivenOnly' && !stepResultListeners
              ? polling.step_result_poll_interval_ms
              : hybrid.polling_interval_ms,
          finalizations: hybrid.polling_interval_ms,
        };
  return {
    mode,
    listen: mode === 'EventDrivenOnly' || (mode === 'Hybrid' && hybrid.enable_event_listeners),
    poll: mode === 'PollingOnly' || (mode === 'Hybrid' && hybrid.enable_polling_fallback),
    fallbackThresholdMs: hybrid.fallback_activation_threshold_ms,
    batchSize: polling.batch_size,
    maxMessagesPerPoll: polling.max_messages_per_poll,
    errorBackoff: backoff(polling),
    listener: listenerSettings(config, mode, role),
    pollIntervalMs,
    stepResultListeners,
  };
}

/** `[worker]` → how the worker learns of steps in its namespace queues. */
export function workerCoordination(config: TaskerConfig): WorkerCoordination {
  const role = config.worker;
  const mode = role.deployment_mode;
  const hybrid = role.hybrid;
  return {
    mode,
    listen: mode === 'EventDrivenOnly' || (mode === 'Hybrid' && hybrid.enable_event_listeners),
    poll: mode === 'PollingOnly' || (mode === 'Hybrid' && hybrid.enable_polling_fallback),
    fallbackThresholdMs: hybrid.fallback_activation_threshold_ms,
    batchSize: role.polling.batch_size,
    // The worker's claims are bounded by its free handler slots; a cycle takes what fits.
    maxMessagesPerPoll: Number.POSITIVE_INFINITY,
    errorBackoff: backoff(role.polling),
    listener: listenerSettings(config, mode, role),
    pollIntervalMs: mode === 'PollingOnly' ? role.polling.polling_interval_ms : hybrid.polling_interval_ms,
  };
}

/** Settings for library use without a configuration: Hybrid with a 1 s safety-net poll. */
export function defaultCoordination(pollIntervalMs: number | null = 1_000): CoordinationSettings {
  return {
    mode: 'Hybrid',
    listen: true,
    poll: pollIntervalMs !== null,
    fallbackThresholdMs: 5_000,
    batchSize: 50,
    maxMessagesPerPoll: Number.POSITIVE_INFINITY,
    errorBackoff: { baseMs: 100, maxMs: 5_000, multiplier: 2 },
    listener: {},
  };
}

/** Wait before the next attempt after `failures` failed drains in a row (0 → none). */
export function errorBackoffDelay(backoffSettings: ErrorBackoff, failures: number): number {
  if (failures <= 0) return 0;
  const delay = backoffSettings.baseMs * backoffSettings.multiplier ** (failures - 1);
  return Math.min(backoffSettings.maxMs, Math.round(delay));
}
