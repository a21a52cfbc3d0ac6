import type { FastifyInstance } from 'fastify';
import { TaskerError } from '../../../domain/errors.ts';
import type { Logger } from '../../../observability/logger.ts';
import type { Queryable } from '../../../db/database.ts';
import { listLiveWorkers, namespacesWithoutWorkers } from '../../../db/queries/workerRegistry.ts';
import type { RestContext } from '../restContext.ts';
import {
  circuitBreakerStates,
  circuitBreakerDetailsSection,
  circuitBreakersSection,
  databaseWord,
  messageQueueWord,
  componentStatus,
  databaseCheck,
  databaseSection,
  eventListenersSection,
  messageQueueCheck,
  pollingSection,
  workIntake,
} from '../healthReport.ts';
import type { HealthSources } from '../healthReport.ts';
import { HealthEvaluator } from '../healthEvaluator.ts';
import type { HealthEvaluatorSettings } from '../healthEvaluator.ts';

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

const componentEnum = { type: 'string', enum: ['healthy', 'unhealthy'] } as const;
const databaseEnum = { type: 'string', enum: ['connected', 'disconnected'] } as const;
const messageQueueEnum = { type: 'string', enum: ['operational', 'unavailable'] } as const;

const basicSchema = {
  type: 'object',
  required: ['status', 'timestamp', 'database', 'message_queue'],
  properties: {
    status: componentEnum,
    timestamp: { type: 'string', format: 'date-time' },
    database: databaseEnum,
    message_queue: messageQueueEnum,
    message: { type: 'string' },
    circuit_breakers: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

const detailedSchema = {
  type: 'object',
  required: ['status', 'timestamp', 'database', 'message_queue'],
  // The sections are documented in docs/operations.md; the schema keeps them as they are.
  additionalProperties: true,
  properties: {
    status: componentEnum,
    timestamp: { type: 'string', format: 'date-time' },
    version: { type: 'string' },
    uptime_seconds: { type: 'number' },
    deployment_mode: { type: 'string' },
    message: { type: 'string' },
    message_queue: messageQueueEnum,
    event_listeners: { type: 'object', additionalProperties: true },
    polling: { type: 'object', additionalProperties: true },
    database: { type: 'object', additionalProperties: true },
    circuit_breakers: { type: 'object', additionalProperties: { type: 'string' } },
    circuit_breaker_details: { type: 'object', additionalProperties: true },
    executors: { type: 'object', additionalProperties: true },
    health_evaluation: { type: 'object', additionalProperties: true },
    workers: { type: 'object', additionalProperties: true },
  },
} as const;

/** The queue the basic check reads counters of: every orchestrator consumes it. */
const PROBE_QUEUE = 'orchestration_step_results';

/**
 * The live workers (heartbeat in tasker.worker_namespaces) and the namespaces whose unfinished tasks no live
 * worker serves: such tasks wait without end, and nothing else in the cluster would say why. Left out when the
 * read fails: the database section already says what is wrong.
 */
async function workersSection(db: Queryable, logger: Logger): Promise<Record<string, unknown> | undefined> {
  try {
    const [live, unserved] = await Promise.all([listLiveWorkers(db), namespacesWithoutWorkers(db)]);
    return {
      live: live.map((worker) => ({
        ...worker,
        started_at: worker.started_at.toISOString(),
        heartbeat_at: worker.heartbeat_at.toISOString(),
      })),
      namespaces_without_worker: unserved,
    };
  } catch (error) {
    logger.warn({ err: error }, 'reading the worker registry for /health/detailed failed');
    return undefined;
  }
}

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
  options: {
    readinessChecks: Record<string, ReadinessCheck>;
    version: string | undefined;
    /** Listener, polling and mode for /health/detailed; without it those sections are left out. */
    healthSources?: HealthSources | undefined;
    /**
     * `[orchestration.health]` hysteresis: /health records its live checks in a HealthEvaluator (which also
     * runs them every intervalMs) and answers the evaluated status. Without it, /health answers its live
     * checks as they are.
     */
    healthEvaluation?: HealthEvaluatorSettings | undefined;
  },
): void {
  const startedAt = Date.now();
  const live = () => ({ status: 'healthy' as const, timestamp: new Date().toISOString() });
  app.get(
    '/health/live',
    {
      config: { access: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Liveness probe',
        description: 'Answers while the process serves HTTP; touches nothing else.',
        response: { 200: liveSchema },
      },
    },
    () => Promise.resolve(live()),
  );

  const liveComponents = async () => {
    const [database, messageQueue] = await Promise.all([
      componentStatus(databaseCheck(ctx.db)),
      componentStatus(messageQueueCheck(ctx.db, PROBE_QUEUE)),
    ]);
    // EventDrivenOnly with a failed or deaf listener gets no work at all: that is unhealthy too.
    const intake = options.healthSources === undefined ? null : workIntake(options.healthSources);
    // An open circuit breaker fails calls at once: the service cannot do its work until it closes.
    const breakers = circuitBreakerStates(options.healthSources);
    const passed =
      database === 'healthy' &&
      messageQueue === 'healthy' &&
      (intake?.canReceiveWork ?? true) &&
      !breakers.anyOpen;
    return { passed, database, messageQueue, intake, breakers: breakers.states } as const;
  };
  // The background evaluation (every health_check_interval_ms) runs the same checks.
  const evaluator =
    options.healthEvaluation === undefined
      ? undefined
      : new HealthEvaluator(options.healthEvaluation, async () => (await liveComponents()).passed);
  evaluator?.start();
  app.addHook('onClose', () => evaluator?.stop());
  const components = async () => {
    const { passed, ...live } = await liveComponents();
    const status = evaluator?.record(passed) ?? (passed ? 'healthy' : 'unhealthy');
    return { status, ...live } as const;
  };

  app.get(
    '/health',
    {
      config: { access: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Basic health',
        description:
          'The database answers `SELECT 1` and the message queue answers `pgmq.metrics`, and no circuit breaker ' +
          'is open (`circuit_breakers` has the state of each). 503 when any of that fails.',
        response: { 200: basicSchema, 503: { ...basicSchema, description: 'Unhealthy' } },
      },
    },
    async (_request, reply) => {
      const { status, database, messageQueue, intake, breakers } = await components();
      return reply.code(status === 'healthy' ? 200 : 503).send({
        status,
        timestamp: new Date().toISOString(),
        database: databaseWord(database),
        message_queue: messageQueueWord(messageQueue),
        circuit_breakers: breakers,
        ...(intake?.problem != null && { message: intake.problem }),
      });
    },
  );

  app.get(
    '/health/detailed',
    {
      config: { access: 'operational' },
      schema: {
        tags: ['health'],
        summary: 'Detailed health',
        description:
          'Deployment mode, event listeners, polling, database pool, circuit breakers and executor pools. ' +
          '503 when the database or the message queue is unhealthy, or no work can arrive (EventDrivenOnly ' +
          'with a failed listener).',
        response: { 200: detailedSchema, 503: { ...detailedSchema, description: 'Unhealthy' } },
      },
    },
    async (_request, reply) => {
      const { status, database, messageQueue, intake } = await components();
      const sources = options.healthSources;
      const workers = database === 'healthy' ? await workersSection(ctx.db, ctx.logger) : undefined;
      return reply.code(status === 'healthy' ? 200 : 503).send({
        status,
        timestamp: new Date().toISOString(),
        ...(options.version !== undefined && { version: options.version }),
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        ...(evaluator !== undefined && { health_evaluation: evaluator.snapshot() }),
        ...(intake?.problem != null && { message: intake.problem }),
        ...(sources !== undefined && {
          deployment_mode: sources.coordination.mode,
          event_listeners: eventListenersSection(sources),
          polling: pollingSection(sources),
        }),
        database: databaseSection(ctx.db, database),
        message_queue: messageQueueWord(messageQueue),
        circuit_breakers: circuitBreakersSection(sources),
        circuit_breaker_details: circuitBreakerDetailsSection(sources),
        ...(sources?.executors !== undefined && { executors: sources.executors() }),
        ...(workers !== undefined && { workers }),
      });
    },
  );

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
      config: { access: 'public' },
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
