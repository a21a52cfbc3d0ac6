import type { TaskerConfig } from '../config/schema.ts';
import type { Database } from '../db/database.ts';
import type { MessagingProvider } from '../messaging/messagingProvider.ts';
import type { Logger } from '../observability/logger.ts';
import { BreakerProber } from './breakerProber.ts';
import { CircuitBreaker } from './circuitBreaker.ts';
import type { CircuitBreakerSettings, CircuitBreakerSnapshot, CircuitTransition } from './circuitBreaker.ts';
import { CircuitBreakerDatabase } from './circuitBreakerDatabase.ts';
import { CircuitBreakerMessagingProvider } from './circuitBreakerMessagingProvider.ts';

/** The two breakers of a service process, named as in `[circuit_breakers]`. */
export interface ServiceCircuitBreakers {
  readonly database: CircuitBreaker;
  readonly messageQueue: CircuitBreaker;
  /**
   * The database as the service's work and API see it: through the `database` breaker, which, while open,
   * probes `db` with `SELECT 1` to close again as soon as it answers.
   */
  guardDatabase(db: Database): Database;
  /** The queues as the service's work sees them: through the `message_queue` breaker, probing likewise. */
  guardMessaging(provider: MessagingProvider): CircuitBreakerMessagingProvider;
  /** database first, then message_queue. */
  snapshots(): CircuitBreakerSnapshot[];
  /**
   * Calls `listener` whenever a breaker leaves open (a probe found the dependency back, or its timeout passed):
   * the moment to retry work that failed during the outage instead of waiting for its backoff.
   */
  onRecovered(listener: (breaker: string) => void): void;
  /** Stops probing (at shutdown). */
  stop(): void;
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
      { ...fields, max_open_seconds: transition.retryAfterSeconds },
      'circuit breaker opened: calls fail fast until a probe finds the dependency back',
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
  options: { now?: () => number; probeInitialDelayMs?: number } = {},
): ServiceCircuitBreakers {
  const probers = new Map<string, BreakerProber>();
  const recovered: ((breaker: string) => void)[] = [];
  const make = (name: string, settings: BreakerConfig): CircuitBreaker =>
    new CircuitBreaker({
      name,
      ...circuitBreakerSettings(settings),
      ...(options.now !== undefined && { now: options.now }),
      onTransition: (transition) => {
        probers.get(name)?.onTransition(transition);
        logTransition(logger, transition);
        // After the transition is complete (this runs inside it): the woken work goes through the breaker.
        if (transition.from === 'open') queueMicrotask(() => recovered.forEach((listener) => listener(name)));
      },
    });
  const database = make('database', config.database);
  const messageQueue = make('message_queue', config.message_queue);
  const probeWith = (breaker: CircuitBreaker, probe: () => Promise<void>): void => {
    probers.set(
      breaker.name,
      new BreakerProber(breaker, {
        probe,
        logger,
        ...(options.probeInitialDelayMs !== undefined && { initialDelayMs: options.probeInitialDelayMs }),
      }),
    );
  };
  return {
    database,
    messageQueue,
    guardDatabase: (db) => {
      probeWith(database, async () => {
        await db.query('SELECT 1');
      });
      return new CircuitBreakerDatabase(db, database);
    },
    guardMessaging: (provider) => {
      probeWith(messageQueue, () => provider.probe());
      return new CircuitBreakerMessagingProvider(provider, messageQueue);
    },
    snapshots: () => [database.snapshot(), messageQueue.snapshot()],
    onRecovered: (listener) => {
      recovered.push(listener);
    },
    stop: () => {
      for (const prober of probers.values()) prober.stop();
    },
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
