import { isTaskerError } from '../../domain/errors.ts';
import type { Logger } from '../../observability/logger.ts';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

interface ComponentHealth {
  status: HealthStatus;
  message?: string;
  duration_ms?: number;
}

/** What a service reports about itself; the same shape as the REST /health/ready body. */
export interface HealthReport {
  /** Overall: `unhealthy` takes the process out of rotation; `degraded` keeps it ready. */
  status: HealthStatus;
  /** By check name, e.g. `database`. */
  checks: Record<string, ComponentHealth>;
  /** Flat facts about the process (worker_id, pool sizes, ...). */
  info?: Record<string, string | number | boolean>;
}

export type HealthProvider = () => Promise<HealthReport>;

/**
 * Runs a provider with a deadline and never rejects: a provider that throws or does not answer in time yields
 * an unhealthy report, because a probe must get an answer quickly and a broken check means "not ready".
 * The message carries only our own error codes; driver errors may contain SQL or connection strings.
 */
export async function runHealthProvider(
  provider: HealthProvider,
  timeoutMs: number,
  logger: Logger,
): Promise<HealthReport> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      provider(),
      new Promise<HealthReport>((resolve) => {
        timer = setTimeout(
          () => resolve(failedReport(`the health provider did not answer within ${timeoutMs} ms`, elapsed())),
          timeoutMs,
        );
        // An evaluation still running when the process stops must not hold it open.
        timer.unref();
      }),
    ]);
  } catch (error) {
    logger.warn({ err: error }, 'gRPC health provider failed');
    return failedReport(
      isTaskerError(error)
        ? `the health provider failed: ${error.code}`
        : 'the health provider failed; see the service log',
      elapsed(),
    );
  } finally {
    clearTimeout(timer);
  }
}

function failedReport(message: string, durationMs: number): HealthReport {
  return {
    status: 'unhealthy',
    checks: { health_provider: { status: 'unhealthy', message, duration_ms: durationMs } },
  };
}

/** The report as seen while the process is marked not serving: unhealthy, and says why. */
export function withNotServing(report: HealthReport): HealthReport {
  return {
    ...report,
    status: 'unhealthy',
    checks: {
      ...report.checks,
      serving: { status: 'unhealthy', message: 'marked not serving: the process is shutting down' },
    },
  };
}

/** One named check; report trouble as `unhealthy`/`degraded`, or throw. */
export type HealthCheck = () => Promise<ComponentHealth>;

/**
 * Runs named checks at once and combines them: unhealthy if any is unhealthy, else degraded if any is,
 * else healthy. Each check is timed; one that throws is unhealthy with only our own error code as its
 * message (driver errors may carry SQL or connection strings), and is logged.
 */
export async function reportFromChecks(
  checks: Record<string, HealthCheck>,
  options: { info?: Record<string, string | number | boolean>; logger?: Logger } = {},
): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, ComponentHealth]> => {
      const started = performance.now();
      const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
      try {
        const result = await check();
        return [name, { duration_ms: elapsed(), ...result }];
      } catch (error) {
        options.logger?.warn({ err: error, check: name }, 'health check failed');
        return [
          name,
          {
            status: 'unhealthy',
            message: isTaskerError(error) ? error.code : 'check failed; see the service log',
            duration_ms: elapsed(),
          },
        ];
      }
    }),
  );
  const statuses = entries.map(([, check]) => check.status);
  return {
    status: statuses.includes('unhealthy')
      ? 'unhealthy'
      : statuses.includes('degraded')
        ? 'degraded'
        : 'healthy',
    checks: Object.fromEntries(entries),
    ...(options.info !== undefined && { info: options.info }),
  };
}
