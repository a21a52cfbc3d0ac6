import type { Database } from '../../db/database.ts';
import type { CoordinationMonitor } from '../../coordination/coordinationMonitor.ts';
import type { ExecutorPoolSnapshot } from '../../coordination/executorPool.ts';
import type { CircuitBreakerSnapshot } from '../../resilience/circuitBreaker.ts';

// The pieces of /health and /health/detailed both services share: timed component checks and the sections
// describing how the process learns of work (listener, polling) and its database pool.

/** What a service tells its HTTP layer about how it learns of work. */
export interface HealthSources {
  /** The role's deployment mode, listener and polling state (and Hybrid's fallback). */
  coordination: CoordinationMonitor;
  /** The orchestration stages' executor pools; absent on the worker. */
  executors?: () => Record<string, ExecutorPoolSnapshot>;
  /** The process's circuit breakers (database, message_queue). @defaultValue none */
  circuitBreakers?: () => readonly CircuitBreakerSnapshot[];
}

export type ComponentStatus = 'healthy' | 'unhealthy';

/** A check that has not answered within this counts as unhealthy: a probe must answer quickly. */
const COMPONENT_CHECK_TIMEOUT_MS = 3_000;

/** Runs `check`; healthy when it resolves within the timeout, unhealthy when it throws or is late. */
export async function componentStatus(check: () => Promise<unknown>): Promise<ComponentStatus> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), COMPONENT_CHECK_TIMEOUT_MS);
    });
    const outcome = await Promise.race([check().then(() => 'ok' as const), late]);
    return outcome === 'ok' ? 'healthy' : 'unhealthy';
  } catch {
    return 'unhealthy';
  } finally {
    clearTimeout(timer);
  }
}

export const databaseCheck = (db: Database) => () => db.query('SELECT 1');

/** Cheap: reads one queue's counters, proving the pgmq extension and the queue table answer. */
export const messageQueueCheck = (db: Database, queue: string) => () =>
  db.query('SELECT queue_length FROM pgmq.metrics($1)', [queue]);

export function eventListenersSection(sources: HealthSources) {
  const { eventListeners } = sources.coordination.status();
  return {
    enabled: eventListeners.enabled,
    active: eventListeners.active,
    status: eventListeners.status,
    channels: eventListeners.channels,
    lag_ms: eventListeners.lagMs,
    notifications_verified: eventListeners.notificationsVerified,
    reconnects: eventListeners.reconnects,
    backend_pid: eventListeners.backendPid,
  };
}

export function pollingSection(sources: HealthSources) {
  const { polling } = sources.coordination.status();
  return {
    enabled: polling.enabled,
    // Polling is what delivers work now: PollingOnly, or Hybrid in active fallback.
    active: polling.active,
    fallback_triggered: polling.fallbackTriggered,
    mode_switches: polling.modeSwitches,
  };
}

/** Whether work can reach the process, and if not (or only through polling) why. */
export function workIntake(sources: HealthSources): { canReceiveWork: boolean; problem: string | null } {
  const { canReceiveWork, problem } = sources.coordination.status();
  return { canReceiveWork, problem };
}

/** The words the seed's health answers use for the database: `connected`, else `disconnected`. */
export function databaseWord(status: ComponentStatus): 'connected' | 'disconnected' {
  return status === 'healthy' ? 'connected' : 'disconnected';
}

/** The words the seed's health answers use for the message queue: `operational`, else `unavailable`. */
export function messageQueueWord(status: ComponentStatus): 'operational' | 'unavailable' {
  return status === 'healthy' ? 'operational' : 'unavailable';
}

export function databaseSection(db: Database, status: ComponentStatus) {
  const pool = db.poolStats();
  return {
    status: databaseWord(status),
    pool_size: pool.max,
    active_connections: Math.max(0, pool.total - pool.idle),
    idle: pool.idle,
    waiting: pool.waiting,
  };
}

/**
 * `circuit_breakers` of /health/detailed, as the seed shows it: each breaker's state by name (`"database":
 * "closed"`); `circuit_breaker_details` has the rest.
 */
export function circuitBreakersSection(sources: HealthSources | undefined): Record<string, string> {
  return Object.fromEntries(
    (sources?.circuitBreakers?.() ?? []).map((breaker) => [breaker.name, breaker.state]),
  );
}

/**
 * `circuit_breaker_details` of /health/detailed: each breaker by name with its state (closed, open, half_open),
 * its counters and settings, and while open when it probes next and the seconds until trial calls.
 */
export function circuitBreakerDetailsSection(sources: HealthSources | undefined) {
  const iso = (date: Date | null) => date?.toISOString() ?? null;
  return Object.fromEntries(
    (sources?.circuitBreakers?.() ?? []).map((breaker) => [
      breaker.name,
      {
        state: breaker.state,
        enabled: breaker.enabled,
        consecutive_failures: breaker.consecutiveFailures,
        error_threshold: breaker.errorThreshold,
        timeout_seconds: breaker.timeoutSeconds,
        half_open_timeout_seconds: breaker.halfOpenTimeoutSeconds,
        opened_at: iso(breaker.openedAt),
        half_open_at: iso(breaker.halfOpenAt),
        next_probe_at: iso(breaker.nextProbeAt),
        trial_ends_at: iso(breaker.trialEndsAt),
        retry_after_seconds: breaker.retryAfterSeconds,
        rejected_calls: breaker.rejectedCalls,
        transitions: breaker.transitions,
        recent_transitions: breaker.recentTransitions.map((t) => ({
          from: t.from,
          to: t.to,
          at: t.at.toISOString(),
          reason: t.reason,
        })),
        last_error: breaker.lastError,
        last_failure_at: iso(breaker.lastFailureAt),
      },
    ]),
  );
}

/** Each breaker's state by name, for /health; a process with an open breaker is unhealthy. */
export function circuitBreakerStates(sources: HealthSources | undefined): {
  states: Record<string, string>;
  anyOpen: boolean;
} {
  const snapshots = sources?.circuitBreakers?.() ?? [];
  return {
    states: Object.fromEntries(snapshots.map((breaker) => [breaker.name, breaker.state])),
    anyOpen: snapshots.some((breaker) => breaker.state === 'open'),
  };
}
