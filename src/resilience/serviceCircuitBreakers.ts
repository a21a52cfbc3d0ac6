import type { TaskerConfig } from '../config/schema.ts';
import type { Database } from '../db/database.ts';
import type { MessagingProvider } from '../messaging/messagingProvider.ts';
import type { Logger } from '../observability/logger.ts';
import { CircuitBreaker } from './circuitBreaker.ts';
import type { CircuitBreakerSettings, CircuitBreakerSnapshot, CircuitTransition } from './circuitBreaker.ts';
import { CircuitBreakerDatabase } from './circuitBreakerDatabase.ts';
import { CircuitBreakerMessagingProvider } from './circuitBreakerMessagingProvider.ts';

/** The two breakers of a service process, named as in `[circuit_breakers]`. */
export interface ServiceCircuitBreakers {
  readonly database: CircuitBreaker;
  readonly messageQueue: CircuitBreaker;
  /** The database as the service's work and API see it: through the `database` breaker. */
  guardDatabase(db: Database): Database;
  /** The queues as the service's work sees them: through the `message_queue` breaker. */
  guardMessaging(provider: MessagingProvider): CircuitBreakerMessagingProvider;
  /** database first, then message_queue. */
  snapshots(): CircuitBreakerSnapshot[];
}

type BreakerConfig = TaskerConfig['circuit_breakers']['database'];

/** `[circuit_breakers.<name>]` → the breaker's settings. */
function circuitBreakerSettings(config: BreakerConfig): CircuitBreakerSettings {
  return {
    enabled: config.enabled,
    errorThreshold: config.error_threshold,
    timeoutSeconds: config.timeout_seconds,
    halfOpenTimeoutSeconds: config.half_open_timeout_seconds,
  };
}

/** Opening is what an operator must see (warn); the way back is routine (info). */
function logTransition(logger: Logger, transition: CircuitTransition): void {
  const fields = {
    breaker: transition.breaker,
    from: transition.from,
    to: transition.to,
    reason: transition.reason,
    consecutive_failures: transition.consecutiveFailures,
    last_error: transition.lastError,
  };
  if (transition.to === 'open') {
    logger.warn(
      { ...fields, retry_after_seconds: transition.retryAfterSeconds },
      'circuit breaker opened: calls fail fast until the trial period',
    );
  } else if (transition.to === 'half_open') {
    logger.info(fields, 'circuit breaker half-open: letting trial calls through');
  } else {
    logger.info(fields, 'circuit breaker closed: the dependency answers again');
  }
}

/**
 * The `database` and `message_queue` breakers from `[circuit_breakers]`, logging their transitions.
 * @throws ValidationError TASKER_INVALID_ARGUMENT when a setting is out of range (the config schema checks
 *   the same ranges first)
 */
export function createServiceCircuitBreakers(
  config: TaskerConfig['circuit_breakers'],
  logger: Logger,
  options: { now?: () => number } = {},
): ServiceCircuitBreakers {
  const make = (name: string, settings: BreakerConfig): CircuitBreaker =>
    new CircuitBreaker({
      name,
      ...circuitBreakerSettings(settings),
      ...(options.now !== undefined && { now: options.now }),
      onTransition: (transition) => logTransition(logger, transition),
    });
  const database = make('database', config.database);
  const messageQueue = make('message_queue', config.message_queue);
  return {
    database,
    messageQueue,
    guardDatabase: (db) => new CircuitBreakerDatabase(db, database),
    guardMessaging: (provider) => new CircuitBreakerMessagingProvider(provider, messageQueue),
    snapshots: () => [database.snapshot(), messageQueue.snapshot()],
  };
}

/**
 * The breakers as readiness checks (gRPC CheckReadiness / CheckDetailedHealth): closed is healthy, half-open
 * degraded (trial calls), open unhealthy, each with its state and when it retries in the message.
 */
export function circuitBreakerChecks(
  breakers: ServiceCircuitBreakers,
): Record<string, () => Promise<{ status: 'healthy' | 'degraded' | 'unhealthy'; message: string }>> {
  const check = (breaker: CircuitBreaker) => () => {
    const snapshot = breaker.snapshot();
    const message =
      snapshot.state === 'open'
        ? `open after ${snapshot.consecutiveFailures} failures; trial calls in ${snapshot.retryAfterSeconds ?? 0} s`
        : snapshot.state;
    const status =
      snapshot.state === 'closed' ? 'healthy' : snapshot.state === 'half_open' ? 'degraded' : 'unhealthy';
    return Promise.resolve({ status, message } as const);
  };
  return {
    circuit_breaker_database: check(breakers.database),
    circuit_breaker_message_queue: check(breakers.messageQueue),
  };
}
