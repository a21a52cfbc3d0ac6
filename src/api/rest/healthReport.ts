import type { DeploymentMode } from '../../config/schema.ts';
import type { Database } from '../../db/database.ts';
import type { ListenerState } from '../../messaging/pgmq/notificationListener.ts';

// The pieces of /health and /health/detailed both services share: timed component checks and the sections
// describing how the process learns of work (listener, polling) and its database pool.

/** What a service tells its HTTP layer about how it learns of work. */
export interface HealthSources {
  deploymentMode: DeploymentMode;
  /** The LISTEN connection's state; null when the process has none (listeners disabled, PollingOnly). */
  listenerState: () => Readonly<ListenerState> | null;
  /** Whether event listeners are configured (`[<role>.hybrid] enable_event_listeners`). */
  listenEnabled: boolean;
  /** Whether safety-net polling runs (`[<role>.hybrid] enable_polling_fallback`). */
  pollingEnabled: boolean;
}

export type ComponentStatus = 'healthy' | 'unhealthy';

/** A check that has not answered within this counts as unhealthy: a probe must answer quickly. */
export const COMPONENT_CHECK_TIMEOUT_MS = 3_000;

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
  const state = sources.listenerState();
  return {
    enabled: sources.listenEnabled,
    active: state?.connected ?? false,
    status: state?.status ?? 'stopped',
    channels: state?.channels.length ?? 0,
    reconnects: state?.reconnects ?? 0,
    backend_pid: state?.backendPid ?? null,
    // Notification lag is not measured yet.
    lag_ms: null,
  };
}

export function pollingSection(sources: HealthSources) {
  const connected = sources.listenerState()?.connected ?? false;
  return {
    // Hybrid polls all the time as a safety net; PollingOnly has nothing else.
    active: sources.pollingEnabled,
    fallback_triggered: sources.pollingEnabled && sources.listenEnabled && !connected,
  };
}

/** Whether work can reach the process: a connected listener, or polling. */
export function canReceiveWork(sources: HealthSources): boolean {
  return sources.pollingEnabled || (sources.listenerState()?.connected ?? false);
}

export function databaseSection(db: Database, status: ComponentStatus) {
  const pool = db.poolStats();
  return {
    status,
    pool_size: pool.max,
    active_connections: Math.max(0, pool.total - pool.idle),
    idle: pool.idle,
    waiting: pool.waiting,
  };
}
