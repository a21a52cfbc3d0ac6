import type { FastifyInstance } from 'fastify';
import { TaskerError } from '../../../domain/errors.ts';
import type { Logger } from '../../../observability/logger.ts';
import type { RestContext } from '../restContext.ts';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export type ReadinessCheck = () => Promise<{ status: HealthStatus; message?: string }>;

/** A check that has not answered by then counts as unhealthy: a probe must answer quickly. */
const CHECK_TIMEOUT_MS = 5_000;

const liveSchema = {
  type: 'object',
  required: ['status', 'timestamp'],
  properties: {
    status: { type: 'string', enum: ['healthy'] },
    timestamp: { type: 'string', format: 'date-time' },
  },
} as const;

const readySchema = {
  type: 'object',
  required: ['status', 'timestamp', 'checks'],
  properties: {
    status: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] },
    timestamp: { type: 'string', format: 'date-time' },
    version: { type: 'string' },
    checks: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] },
          message: { type: 'string' },
          duration_ms: { type: 'number' },
        },
      },
    },
  },
} as const;

async function runCheck(
  name: string,
  check: ReadinessCheck,
  logger: Logger,
): Promise<{ status: HealthStatus; message?: string; duration_ms: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = await Promise.race([
      check(),
      new Promise<{ status: HealthStatus; message: string }>((resolve) => {
        timer = setTimeout(
          () => resolve({ status: 'unhealthy', message: `no answer within ${CHECK_TIMEOUT_MS} ms` }),
          CHECK_TIMEOUT_MS,
        );
      }),
    ]);
    return { ...outcome, duration_ms: Math.round((performance.now() - started) * 100) / 100 };
  } catch (error) {
    logger.warn({ err: error, check: name }, 'readiness check failed');
    return {
      status: 'unhealthy',
      // Only our own codes: driver errors may carry SQL text.
      message: error instanceof TaskerError ? error.code : 'check failed; see the service log',
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
    };
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(
  app: FastifyInstance,
  ctx: RestContext,
  options: { readinessChecks: Record<string, ReadinessCheck>; version: string | undefined },
): void {
  const live = () => ({ status: 'healthy' as const, timestamp: new Date().toISOString() });
  for (const url of ['/health', '/health/live']) {
    app.get(
      url,
      {
        schema: {
          tags: ['health'],
          summary: url === '/health' ? 'Basic health' : 'Liveness probe',
          description: 'Answers while the process serves HTTP; touches nothing else.',
          response: { 200: liveSchema },
        },
      },
      () => Promise.resolve(live()),
    );
  }

  const checks: Record<string, ReadinessCheck> = {
    database: async () => {
      await ctx.db.query('SELECT 1');
      return { status: 'healthy' };
    },
    ...options.readinessChecks,
  };

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness probe',
        description:
          'The database answers `SELECT 1`, plus the service’s own checks. 503 when any check is unhealthy; ' +
          'degraded checks keep it ready.',
        response: { 200: readySchema, 503: { ...readySchema, description: 'Not ready' } },
      },
    },
    async (_request, reply) => {
      const names = Object.keys(checks);
      const results = await Promise.all(
        names.map((name) => runCheck(name, checks[name] as ReadinessCheck, ctx.logger)),
      );
      const byName = Object.fromEntries(names.map((name, i) => [name, results[i]]));
      const status: HealthStatus = results.some((r) => r.status === 'unhealthy')
        ? 'unhealthy'
        : results.some((r) => r.status === 'degraded')
          ? 'degraded'
          : 'healthy';
      return reply.code(status === 'unhealthy' ? 503 : 200).send({
        status,
        timestamp: new Date().toISOString(),
        ...(options.version !== undefined && { version: options.version }),
        checks: byName,
      });
    },
  );
}
