/**
 * Prometheus metrics of one Tasker process (docs/operations.md#metrics lists them all).
 *
 * One Registry per TaskerMetrics, never prom-client's global one: a process may run orchestration and a
 * worker side by side (tasker dev), tests build several, and a library user's own registry stays untouched.
 * Labels are bounded on purpose: namespace, template, step name, outcome, queue, state, mode, HTTP route
 * pattern. Task, step and correlation ids never become label values (each would be a new series).
 *
 * Two kinds of metrics: event metrics (counters, histograms) incremented where the event happens, in memory
 * only; and scrape-time metrics, read when /metrics is asked for (pool stats, worker slots, listener state,
 * SQL counts). Scrape-time sources are attached by the service with the `collect*` methods, so a process
 * exposes only what it has.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeploymentMode } from '../config/schema.ts';
import type { Logger } from './logger.ts';
import { silentLogger } from './logger.ts';
import { modeLabel } from './modeLabel.ts';

/** Outcome of one step execution as the worker saw it. */
export type StepExecutionOutcome = 'success' | 'retryable_error' | 'permanent_error' | 'timeout';

/** A task's terminal state. */
type TaskCompletionOutcome = 'complete' | 'error' | 'cancelled' | 'resolved_manually';

export interface TaskCompletionCount {
  namespace: string;
  template: string;
  outcome: TaskCompletionOutcome;
  count: number;
  /** Seconds from creation to the terminal state, one per task. */
  durations?: readonly number[];
}

export interface StepLatencySample {
  namespace: string;
  enqueueToStart: number | null;
  edge: number | null;
}

export interface QueueDepthSample {
  queue: string;
  /** Messages in the queue, visible or not. */
  depth: number;
  oldestAgeSeconds: number | null;
}

/** What the pool metrics read at scrape: Database.poolStats(). */
export interface PoolSample {
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

/** What the coordination metrics read at scrape: a subset of a role's CoordinationMonitor. */
export interface CoordinationSample {
  readonly mode: DeploymentMode;
  readonly fallbackActive: boolean;
  status(): { eventListeners: { lagMs: number | null } };
}

/** Where a queue consumer reports what it did (tasker_polling_*, tasker_event_processing_duration_seconds). */
export interface ConsumerMetrics {
  pollCycle(queue: string, seconds: number, found: number, processed: number): void;
  pollError(queue: string): void;
  eventProcessed(seconds: number): void;
}

/** What the listener metrics read at scrape: a subset of NotificationListener's state. */
export interface ListenerSample {
  connected: boolean;
  reconnects: number;
  notificationsReceived: number;
}

const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;

/** What the circuit breaker metrics read at scrape: a subset of a breaker's snapshot. */
export interface CircuitBreakerSample {
  name: string;
  state: (typeof CIRCUIT_STATES)[number];
  consecutiveFailures: number;
  /** How often the breaker entered each state since it was made (monotonic). */
  transitions: Readonly<Record<(typeof CIRCUIT_STATES)[number], number>>;
  /** Calls refused while open since the breaker was made (monotonic). */
  rejectedCalls: number;
}

export interface TaskerMetricsOptions {
  /** Process metrics of prom-client (CPU, memory, event loop lag, GC, handles). @defaultValue true */
  processMetrics?: boolean;
  /** Labels put on every series, e.g. `{ service: 'orchestration' }`. @defaultValue none */
  defaultLabels?: Record<string, string>;
  /** Where failing scrape-time sources are reported (at warn). @defaultValue a silent logger */
  logger?: Logger;
}

/** Hand-offs between steps: 0.5 ms to 60 s (a poll interval, a retry's backoff). */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
/** Whole tasks: 10 ms to 1 hour. */
const TASK_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Drains and polling cycles: 1 ms to 10 s. */
const DRAIN_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Step run times: 5 ms to 5 minutes (a step's default timeout is 30 s). */
const STEP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** HTTP answers: 1 ms to 30 s (the request timeout; `?wait=N` requests take up to it). */
const HTTP_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Error types come from handler error class names: bounded by code, but cap their length anyway. */
const MAX_LABEL_LENGTH = 64;

function boundedLabel(value: string): string {
  return value.length <= MAX_LABEL_LENGTH ? value : value.slice(0, MAX_LABEL_LENGTH);
}

export class TaskerMetrics {
  readonly registry: Registry;
  readonly tasksCreated: Counter<'namespace' | 'template'>;
  readonly stepsCompleted: Counter<'namespace' | 'step' | 'outcome'>;
  readonly stepErrors: Counter<'namespace' | 'step' | 'error_type'>;
  readonly stepDuration: Histogram<'namespace' | 'step'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpRequestDuration: Histogram<'method' | 'route'>;
  readonly stalenessRuns: Counter<'outcome'>;
  readonly stalenessTasksMoved: Counter;
  readonly retentionRuns: Counter<'outcome'>;
  readonly retentionDeleted: Counter<'kind'>;
  readonly modeSwitches: Counter<'mode' | 'to'>;
  readonly pollingCycles: Counter<'mode' | 'queue'>;
  readonly pollingMessagesFound: Counter<'mode' | 'queue'>;
  readonly pollingMessagesProcessed: Counter<'mode' | 'queue'>;
  readonly pollingErrors: Counter<'mode' | 'queue'>;
  readonly pollingDuration: Histogram<'mode' | 'queue'>;
  readonly eventProcessingDuration: Histogram<'mode'>;
  readonly stepDiscoveryDuration: Histogram<'role'>;
  readonly #collectionErrors: Counter<'source'>;
  readonly #logger: Logger;

  constructor(options: TaskerMetricsOptions = {}) {
    this.registry = new Registry();
    if (options.defaultLabels !== undefined) this.registry.setDefaultLabels(options.defaultLabels);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.#logger = options.logger ?? silentLogger;
    const registers = [this.registry];
    this.tasksCreated = new Counter({
      name: 'tasker_tasks_created_total',
      help: 'Tasks created by this process (REST API and orchestration_task_requests).',
      labelNames: ['namespace', 'template'],
      registers,
    });
    this.stepsCompleted = new Counter({
      name: 'tasker_steps_completed_total',
      help: 'Step executions finished on this worker, by outcome.',
      labelNames: ['namespace', 'step', 'outcome'],
      registers,
    });
    this.stepErrors = new Counter({
      name: 'tasker_step_errors_total',
      help: 'Failed step executions on this worker, by error type (handler error class, timeout, ...).',
      labelNames: ['namespace', 'step', 'error_type'],
      registers,
    });
    this.stepDuration = new Histogram({
      name: 'tasker_step_duration_seconds',
      help: 'Handler run time of step executions on this worker.',
      labelNames: ['namespace', 'step'],
      buckets: STEP_DURATION_BUCKETS,
      registers,
    });
    this.httpRequests = new Counter({
      name: 'tasker_http_requests_total',
      help: 'HTTP requests answered, by route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpRequestDuration = new Histogram({
      name: 'tasker_http_request_duration_seconds',
      help: 'HTTP request duration, by route pattern.',
      labelNames: ['method', 'route'],
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    });
    this.stalenessRuns = new Counter({
      name: 'tasker_staleness_runs_total',
      help: 'Staleness detector sweeps of this process, by outcome (success, failure).',
      labelNames: ['outcome'],
      registers,
    });
    this.stalenessTasksMoved = new Counter({
      name: 'tasker_staleness_tasks_moved_total',
      help: 'Tasks the staleness detector of this process moved to error (and dead-lettered).',
      registers,
    });
    this.retentionRuns = new Counter({
      name: 'tasker_retention_runs_total',
      help: 'Retention sweeps of this process, by outcome (success, failure).',
      labelNames: ['outcome'],
      registers,
    });
    this.retentionDeleted = new Counter({
      name: 'tasker_retention_deleted_total',
      help: 'Rows the retention sweeps of this process deleted: kind = task (finished tasks, with their steps and history) | archived_message.',
      labelNames: ['kind'],
      registers,
    });
    this.modeSwitches = new Counter({
      name: 'tasker_mode_switches_total',
      help: 'Hybrid switches between event-driven delivery and active polling fallback (to = polling_fallback | events).',
      labelNames: ['mode', 'to'],
      registers,
    });
    this.pollingCycles = new Counter({
      name: 'tasker_polling_cycles_total',
      help: 'Polling cycles run (PollingOnly, and Hybrid polls that were not skipped), by queue.',
      labelNames: ['mode', 'queue'],
      registers,
    });
    this.pollingMessagesFound = new Counter({
      name: 'tasker_polling_messages_found_total',
      help: 'Messages found by polling cycles (work that notifications did not deliver first).',
      labelNames: ['mode', 'queue'],
      registers,
    });
    this.pollingMessagesProcessed = new Counter({
      name: 'tasker_polling_messages_processed_total',
      help: 'Messages found by polling cycles and handled.',
      labelNames: ['mode', 'queue'],
      registers,
    });
    this.pollingErrors = new Counter({
      name: 'tasker_polling_errors_total',
      help: 'Polling cycles that failed (retried after the error backoff).',
      labelNames: ['mode', 'queue'],
      registers,
    });
    this.pollingDuration = new Histogram({
      name: 'tasker_polling_duration_seconds',
      help: 'Duration of a polling cycle.',
      labelNames: ['mode', 'queue'],
      buckets: DRAIN_DURATION_BUCKETS,
      registers,
    });
    this.eventProcessingDuration = new Histogram({
      name: 'tasker_event_processing_duration_seconds',
      help: 'From a notification-triggered drain starting to its work being handled.',
      labelNames: ['mode'],
      buckets: DRAIN_DURATION_BUCKETS,
      registers,
    });
    this.stepDiscoveryDuration = new Histogram({
      name: 'tasker_step_discovery_duration_seconds',
      help: 'Round trip that applies step results and finds and enqueues the steps they make ready (worker inline or orchestrator).',
      labelNames: ['role'],
      buckets: DRAIN_DURATION_BUCKETS,
      registers,
    });
    this.#collectionErrors = new Counter({
      name: 'tasker_metrics_collection_errors_total',
      help: 'Scrape-time metric sources that failed; their metrics keep their previous value.',
      labelNames: ['source'],
      registers,
    });
  }

  /** Content-Type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** One finished step execution: outcome counter, duration histogram, and the error counter on failure. */
  recordStepExecution(
    namespace: string,
    step: string,
    outcome: StepExecutionOutcome,
    seconds: number,
    errorType?: string,
  ): void {
    this.stepsCompleted.inc({ namespace, step, outcome });
    this.stepDuration.observe({ namespace, step }, seconds);
    if (outcome !== 'success') {
      this.stepErrors.inc({ namespace, step, error_type: boundedLabel(errorType ?? outcome) });
    }
  }

  /** A Hybrid switch to polling fallback or back to events. */
  recordModeSwitch(mode: DeploymentMode, to: 'polling_fallback' | 'events' = 'polling_fallback'): void {
    this.modeSwitches.inc({ mode: modeLabel(mode), to });
  }

  /** What a queue consumer of `mode` reports: polling cycles and event-driven drains. */
  consumerMetrics(mode: DeploymentMode): ConsumerMetrics {
    const label = modeLabel(mode);
    return {
      pollCycle: (queue, seconds, found, processed) => {
        this.pollingCycles.inc({ mode: label, queue });
        this.pollingDuration.observe({ mode: label, queue }, seconds);
        if (found > 0) this.pollingMessagesFound.inc({ mode: label, queue }, found);
        if (processed > 0) this.pollingMessagesProcessed.inc({ mode: label, queue }, processed);
      },
      pollError: (queue) => this.pollingErrors.inc({ mode: label, queue }),
      eventProcessed: (seconds) => this.eventProcessingDuration.observe({ mode: label }, seconds),
    };
  }

  /**
   * The role's coordination, read at scrape: tasker_polling_fallback_active{mode} and
   * tasker_event_listener_lag_ms{mode} (the last heartbeat NOTIFY's trip through PostgreSQL).
   */
  collectCoordination(monitor: CoordinationSample): void {
    const mode = modeLabel(monitor.mode);
    new Gauge({
      name: 'tasker_polling_fallback_active',
      help: 'Hybrid: 1 while polling is the active path because listeners failed or lag; 0 otherwise.',
      labelNames: ['mode'],
      registers: [this.registry],
      collect() {
        this.set({ mode }, monitor.fallbackActive ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tasker_event_listener_lag_ms',
      help: 'Time the last heartbeat NOTIFY took to reach the LISTEN connection (-1 before the first).',
      labelNames: ['mode'],
      registers: [this.registry],
      collect() {
        this.set({ mode }, monitor.status().eventListeners.lagMs ?? -1);
      },
    });
  }

  /** tasker_database_pool_{active,idle,max,waiting}, read from the pool at scrape. */
  collectPool(poolStats: () => PoolSample): void {
    const gauge = (name: string, help: string, read: (stats: PoolSample) => number): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read(poolStats()));
        },
      });
    };
    gauge('tasker_database_pool_active', 'Pool connections checked out now.', (s) => s.total - s.idle);
    gauge('tasker_database_pool_idle', 'Pool connections open and idle.', (s) => s.idle);
    gauge(
      'tasker_database_pool_max',
      'Largest number of pool connections ([database] max_connections).',
      (s) => s.max,
    );
    gauge('tasker_database_pool_waiting', 'Queries waiting for a pool connection.', (s) => s.waiting);
  }

  /** tasker_worker_active_executions and tasker_worker_capacity, read from the worker at scrape. */
  collectWorker(worker: { readonly activeExecutions: number; readonly capacity: number }): void {
    new Gauge({
      name: 'tasker_worker_active_executions',
      help: 'Step handlers running on this worker now.',
      registers: [this.registry],
      collect() {
        this.set(worker.activeExecutions);
      },
    });
    new Gauge({
      name: 'tasker_worker_capacity',
      help: 'Step handlers this worker runs at most at once ([worker] max_concurrent_handlers).',
      registers: [this.registry],
      collect() {
        this.set(worker.capacity);
      },
    });
  }

  /**
   * The LISTEN connection: tasker_event_listener_active{mode} (1 connected, 0 not),
   * tasker_listener_reconnections_total and tasker_event_notifications_received_total. The counters follow the
   * listener's own monotonic counts; `read` returns null while there is no listener (its metrics stay as they are).
   */
  collectListener(deploymentMode: DeploymentMode, read: () => ListenerSample | null): void {
    const mode = modeLabel(deploymentMode);
    new Gauge({
      name: 'tasker_event_listener_active',
      help: 'Whether the LISTEN connection is up (1) or not (0); mode is the deployment mode.',
      labelNames: ['mode'],
      registers: [this.registry],
      collect() {
        this.set({ mode }, read()?.connected === true ? 1 : 0);
      },
    });
    const followed = (name: string, help: string, pick: (sample: ListenerSample) => number): void => {
      let last = 0;
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const sample = read();
          if (sample === null) return;
          const now = pick(sample);
          // A smaller number means a new listener object: count from it.
          if (now > last) this.inc(now - last);
          last = now;
        },
      });
    };
    followed(
      'tasker_listener_reconnections_total',
      'Re-connections of the LISTEN connection after the first one.',
      (s) => s.reconnects,
    );
    followed(
      'tasker_event_notifications_received_total',
      'Notifications received on the LISTEN connection (heartbeats excluded).',
      (s) => s.notificationsReceived,
    );
  }

  /** tasker_queue_depth{queue} and tasker_queue_oldest_message_age_seconds{queue}, read at scrape. */
  collectQueueDepths(read: () => Promise<readonly QueueDepthSample[]>): void {
    const run = this.#guarded('queue_depth', read);
    const age = new Gauge({
      name: 'tasker_queue_oldest_message_age_seconds',
      help: 'Age of the oldest message in the queue (0 when empty).',
      labelNames: ['queue'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'tasker_queue_depth',
      help: 'Messages in the queue, visible or not.',
      labelNames: ['queue'],
      registers: [this.registry],
      async collect() {
        const samples = await run();
        if (samples === undefined) return;
        for (const sample of samples) {
          this.set({ queue: sample.queue }, sample.depth);
          age.set({ queue: sample.queue }, sample.oldestAgeSeconds ?? 0);
        }
      },
    });
  }

  /** tasker_tasks_active: tasks not in a terminal state, database-wide, read at scrape. */
  collectActiveTasks(count: () => Promise<number>): void {
    const run = this.#guarded('tasks_active', count);
    new Gauge({
      name: 'tasker_tasks_active',
      help: 'Tasks not in a terminal state, in the whole database (every orchestrator reports the same).',
      registers: [this.registry],
      async collect() {
        const value = await run();
        if (value !== undefined) this.set(value);
      },
    });
  }

  /**
   * tasker_tasks_completed_total{namespace,template,outcome}: `read` returns the tasks that reached a terminal
   * state since its previous call (database-wide), added at scrape. Scrapes running at once share one read,
   * so nothing is counted twice.
   */
  collectTaskCompletions(read: () => Promise<readonly TaskCompletionCount[]>): void {
    const run = this.#guarded('tasks_completed', read);
    const counter = new Counter({
      name: 'tasker_tasks_completed_total',
      help:
        'Tasks that reached a terminal state (complete, error, cancelled, resolved_manually) since this ' +
        'process started, database-wide: every orchestrator counts every task (aggregate with max, not sum).',
      labelNames: ['namespace', 'template', 'outcome'],
      registers: [this.registry],
      collect: () => refresh(),
    });
    const durations = new Histogram({
      name: 'tasker_task_duration_seconds',
      help:
        'Task creation → terminal state, by outcome, database-wide like tasker_tasks_completed_total (every ' +
        'orchestrator observes every task: take one replica, do not sum).',
      labelNames: ['namespace', 'template', 'outcome'],
      buckets: TASK_DURATION_BUCKETS,
      registers: [this.registry],
      collect: () => refresh(),
    });
    const refresh = sharedRefresh(async () => {
      for (const row of (await run()) ?? []) {
        const labels = { namespace: row.namespace, template: row.template, outcome: row.outcome };
        counter.inc(labels, row.count);
        for (const seconds of row.durations ?? []) durations.observe(labels, seconds);
      }
    });
  }

  /**
   * tasker_step_enqueue_to_start_seconds{namespace} (enqueued → claimed, every run) and
   * tasker_step_edge_latency_seconds{namespace} (last parent complete → child started, first runs): `read`
   * returns the steps started since its previous call, database-wide, observed at scrape.
   */
  collectStepLatencies(read: () => Promise<readonly StepLatencySample[]>): void {
    const run = this.#guarded('step_latencies', read);
    const enqueueToStart = new Histogram({
      name: 'tasker_step_enqueue_to_start_seconds',
      help:
        'Step enqueued → claimed by a worker (each run), database-wide (every orchestrator observes every step: ' +
        "take one replica). 0 for a step its parent's completing commit claimed.",
      labelNames: ['namespace'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
      collect: () => refresh(),
    });
    const edges = new Histogram({
      name: 'tasker_step_edge_latency_seconds',
      help: 'Last parent step complete → child step started (first runs), database-wide like the above.',
      labelNames: ['namespace'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
      collect: () => refresh(),
    });
    const refresh = sharedRefresh(async () => {
      for (const row of (await run()) ?? []) {
        if (row.enqueueToStart !== null)
          enqueueToStart.observe({ namespace: row.namespace }, row.enqueueToStart);
        if (row.edge !== null) edges.observe({ namespace: row.namespace }, row.edge);
      }
    });
  }

  /**
   * The circuit breakers, read at scrape: tasker_circuit_breaker_state{name,state} (1 for the current state,
   * 0 for the other two), tasker_circuit_breaker_consecutive_failures{name}, and the counters
   * tasker_circuit_breaker_transitions_total{name,to} and tasker_circuit_breaker_rejected_calls_total{name},
   * which follow the breakers' own monotonic counts (every series exists from the first scrape, at 0).
   */
  collectCircuitBreakers(read: () => readonly CircuitBreakerSample[]): void {
    const registers = [this.registry];
    new Gauge({
      name: 'tasker_circuit_breaker_state',
      help: 'Circuit breaker state: 1 for the current state (closed, open, half_open), 0 for the others.',
      labelNames: ['name', 'state'],
      registers,
      collect() {
        for (const sample of read()) {
          for (const state of CIRCUIT_STATES) {
            this.set({ name: sample.name, state }, sample.state === state ? 1 : 0);
          }
        }
      },
    });
    new Gauge({
      name: 'tasker_circuit_breaker_consecutive_failures',
      help: 'Connection failures in a row counted by the breaker (it opens at error_threshold).',
      labelNames: ['name'],
      registers,
      collect() {
        for (const sample of read()) this.set({ name: sample.name }, sample.consecutiveFailures);
      },
    });
    const counted = new Map<string, number>();
    /** Adds what a monotonic count grew by since the last scrape. */
    const follow = (counter: Counter<string>, labels: Record<string, string>, now: number): void => {
      const key = JSON.stringify(labels);
      counter.inc(labels, Math.max(0, now - (counted.get(key) ?? 0)));
      counted.set(key, now);
    };
    new Counter({
      name: 'tasker_circuit_breaker_transitions_total',
      help: 'Circuit breaker transitions, by the state entered (to = open, half_open, closed).',
      labelNames: ['name', 'to'],
      registers,
      collect() {
        for (const sample of read()) {
          for (const to of CIRCUIT_STATES) follow(this, { name: sample.name, to }, sample.transitions[to]);
        }
      },
    });
    new Counter({
      name: 'tasker_circuit_breaker_rejected_calls_total',
      help: 'Calls an open circuit breaker refused at once (TASKER_CIRCUIT_OPEN) instead of waiting on the dependency.',
      labelNames: ['name'],
      registers,
      collect() {
        for (const sample of read()) follow(this, { name: sample.name }, sample.rejectedCalls);
      },
    });
  }

  /** A failing source must not fail the whole scrape: its metrics keep their value, the error is counted. */
  #guarded<T>(source: string, read: () => Promise<T>): () => Promise<T | undefined> {
    return async () => {
      try {
        return await read();
      } catch (error) {
        this.#collectionErrors.inc({ source });
        this.#logger.warn({ err: error, source }, 'metrics source failed at scrape');
        return undefined;
      }
    };
  }
}

/**
 * One read feeding several metrics at scrape: every metric's collect awaits the same read while it runs, so
 * each metric is written after its values were updated (a registry may collect its metrics concurrently).
 */
function sharedRefresh(update: () => Promise<void>): () => Promise<void> {
  let inFlight: Promise<void> | undefined;
  return () =>
    (inFlight ??= update().finally(() => {
      inFlight = undefined;
    }));
}

/** How a worker's step failure maps to the outcome label. */
export function stepFailureOutcome(failure: {
  error_type: string;
  retryable: boolean;
}): StepExecutionOutcome {
  if (failure.error_type === 'timeout') return 'timeout';
  return failure.retryable ? 'retryable_error' : 'permanent_error';
}
