import { DEFAULT_TASK_LIMITS, stepCountProblem } from '../domain/limits.ts';
import type { TaskLimits } from '../domain/limits.ts';
import { TemplateError } from '../domain/template/templateError.ts';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { claimSteps } from '../db/queries/claimSteps.ts';
import type { ClaimedStep } from '../db/queries/claimSteps.ts';
import type { CoordinationMonitor } from '../coordination/coordinationMonitor.ts';
import type { ListenerStateSource } from '../coordination/coordinationMonitor.ts';
import { defaultCoordination } from '../coordination/coordinationSettings.ts';
import type { WorkerCoordination } from '../coordination/coordinationSettings.ts';
import { roleCoordination } from '../coordination/roleMonitor.ts';
import { QueueConsumer } from '../coordination/queueConsumer.ts';
import { CommitBatcher } from '../db/commitBatcher.ts';
import type { DrainReport, DrainTrigger } from '../coordination/queueConsumer.ts';
import { completeManyAndClaim, poolIsBusy, signalSoon } from '../db/queries/completeStep.ts';
import type { CompleteOutcome, PendingSignal, StepFailure } from '../db/queries/completeStep.ts';
import { registerTemplate } from '../db/queries/registerTemplate.ts';
import { isTransientDatabaseError } from '../db/sqlState.ts';
import { ValidationError } from '../domain/errors.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import type { MessagingProvider } from '../messaging/messagingProvider.ts';
import { workerQueueName } from '../messaging/queueName.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { stepFailureOutcome } from '../observability/metrics.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';
import type { TaskerTracing } from '../observability/tracing.ts';
import type { StepHandlerDefinition } from './handlerApi.ts';
import { HandlerRegistry } from './handlerRegistry.ts';
import { executeStep } from './stepExecutor.ts';
import { WorkerPresence } from './workerPresence.ts';
import type { StepOutcome } from './stepExecutor.ts';

export interface WorkerOptions {
  db: Database;
  provider: MessagingProvider;
  handlers: HandlerRegistry | readonly StepHandlerDefinition[];
  /** Templates this worker serves: registered in the database at start, their handlers checked. */
  templates?: readonly TaskTemplate[];
  /** Namespaces to serve; defaults to the namespaces of `templates`. */
  namespaces?: readonly string[];
  /** Handlers running at once; work beyond it stays in the queue. @defaultValue 10 */
  maxConcurrentHandlers?: number;
  /** Seconds a claimed step's message stays hidden without a heartbeat. @defaultValue 30 */
  leaseSeconds?: number;
  /** How often running steps' leases are extended. @defaultValue a third of leaseSeconds */
  heartbeatIntervalMs?: number;
  /** Timeout of steps whose template sets none. @defaultValue 30000 */
  defaultTimeoutMs?: number;
  /**
   * Apply results in the worker's completing commit (next steps enqueued and, in the same round trip, claimed;
   * the task finalized) instead of via orchestration_step_results. false routes every result through the
   * orchestrator, as a broker without SQL access (RabbitMQ) requires.
   * @defaultValue true (it was false in early versions; the service configuration already defaulted to true)
   */
  applyResultsInline?: boolean;
  /**
   * Deployment mode and its settings (services: `workerCoordination(config)`). Without it: Hybrid, listening
   * unless `listen` is false, polling every `pollIntervalMs`.
   */
  coordination?: WorkerCoordination;
  /** Only without `coordination`. @defaultValue true */
  listen?: boolean;
  /** Safety-net polling, null disables (only without `coordination`). @defaultValue 1000 */
  pollIntervalMs?: number | null;
  /** The LISTEN connection's state, for Hybrid's fallback decision and health. @defaultValue the provider's */
  listenerState?: ListenerStateSource;
  /** How long stop() waits for running handlers before aborting them. @defaultValue 10000 */
  shutdownTimeoutMs?: number;
  /**
   * `[limits]`: a template with more steps is refused at start, a larger result fails its step for good.
   * @defaultValue DEFAULT_TASK_LIMITS
   */
  limits?: Pick<TaskLimits, 'maxStepsPerTask' | 'maxResultBytes'>;
  logger?: Logger;
  /** Recorded with the worker's heartbeat (`tasker worker list`). @defaultValue 'unknown' */
  version?: string;
  /**
   * Called for each failed attempt whose result was stored (not for a result a lost lease made stale).
   * @defaultValue a warn line on `logger` with the step, task, attempt, error and whether it will retry
   */
  onStepFailure?: (report: StepFailureReport) => void;
  /** Step outcomes, errors and durations are counted here (in memory; no SQL). @defaultValue none */
  metrics?: TaskerMetrics;
  /** Each claimed step gets claim, execute and result spans in its task's trace. @defaultValue none */
  tracing?: TaskerTracing;
}

/** One failed attempt of a step, as the worker reports it. */
export interface StepFailureReport {
  namespace: string;
  taskUuid: string;
  stepUuid: string;
  stepName: string;
  correlationId: string;
  attempt: number;
  maxAttempts: number;
  failure: StepFailure;
  /**
   * Whether the step will run again. Known from the stored outcome when results are applied inline; else
   * (the orchestrator applies them) what the step's retry policy lets the orchestrator do.
   */
  willRetry: boolean;
}

interface RunningStep {
  step: ClaimedStep;
  namespace: string;
  done: Promise<void>;
  /** performance.now() when the step's lease runs out: its claim, then each heartbeat that held it. */
  leaseUntil: number;
}

/**
 * Pauses between tries to store results while the database is unreachable: doubling from the first, up to the
 * last. Tries go on while a step of the batch still holds its lease (a restart or failover of PostgreSQL
 * takes seconds); once every lease has run out, another worker may hold the steps, so storing stops.
 */
const STORE_RETRY_FIRST_MS = 100;
const STORE_RETRY_MAX_MS = 2_000;
/** Most results stored in one round trip. */
const MAX_RESULT_BATCH = 50;
/**
 * Result batches on their way at once per namespace: two, so that storing can use two database cores while
 * the next results gather. Batches lock their tasks in task order, so they cannot deadlock each other.
 */
const MAX_BATCHES_IN_FLIGHT = 2;

interface StoreResult {
  outcome: CompleteOutcome | 'unstored';
  /** The storing round trip already looked for work for the freed slot. */
  refilled: boolean;
}

interface PendingResult {
  step: ClaimedStep;
  outcome: StepOutcome;
  resolve: (result: StoreResult) => void;
}

/**
 * The worker role at library level: claims steps of its namespaces, runs their handlers at most
 * `maxConcurrentHandlers` at a time under a lease kept alive by a heartbeat, and stores each result in the
 * same commit that releases the lease. A worker that dies mid-step leaves a lease that expires: another
 * worker then takes the step over.
 */
export class Worker {
  readonly id = `${hostname()}-${process.pid}-worker-${randomUUID().slice(0, 8)}`;
  readonly namespaces: readonly string[];
  private readonly options: WorkerOptions;
  private readonly registry: HandlerRegistry;
  private readonly logger: Logger;
  private readonly loop: QueueConsumer;
  readonly monitor: CoordinationMonitor;
  private readonly coordination: WorkerCoordination;
  private readonly running = new Map<string, RunningStep>();
  private readonly pendingSignals = new Set<Promise<void>>();
  /** Results on their way to the database, batched per namespace. */
  private readonly resultBatchers = new Map<string, CommitBatcher<PendingResult>>();
  /**
   * Namespaces whose queue may hold visible work this worker has not taken: a read filled all the room it
   * had, or a wake-up came while every slot was busy. Only for these does a completing round trip read the
   * queue for its freed slots (`refill`); any other work comes with a signal of its own (or the poll), and
   * reading for it after every step would find nothing. A read that finds less than it asked for clears it.
   */
  private readonly backlog = new Set<string>();
  private readonly shutdown = new AbortController();
  /** Handlers running at most at once (maxConcurrentHandlers). */
  readonly capacity: number;
  /** Seconds a claimed step's message stays hidden without a heartbeat (leaseSeconds). */
  private readonly leaseSeconds: number;
  private nextNamespace = 0;
  private readonly debugEnabled: boolean;
  private presence: WorkerPresence | undefined;
  /** Parent of each handler's `ctx.logger`. */
  private readonly handlerLogger: Logger;
  private started = false;
  private stopping = false;

  constructor(options: WorkerOptions) {
    this.options = options;
    this.registry =
      options.handlers instanceof HandlerRegistry ? options.handlers : new HandlerRegistry(options.handlers);
    const fromTemplates = (options.templates ?? []).map((template) => template.namespace);
    this.namespaces = [...new Set(options.namespaces ?? fromTemplates)].sort();
    if (this.namespaces.length === 0) {
      throw new ValidationError(
        'TASKER_INVALID_ARGUMENT',
        'a worker needs at least one namespace: pass namespaces, or templates to serve (WORKER_NAMESPACES in the service)',
      );
    }
    this.capacity = Math.max(1, options.maxConcurrentHandlers ?? 10);
    this.leaseSeconds = options.leaseSeconds ?? 30;
    // Every running step listens on the shutdown signal; capacity bounds how many do.
    setMaxListeners(this.capacity + 10, this.shutdown.signal);
    this.logger = (options.logger ?? silentLogger).child({ component: 'worker', worker_id: this.id });
    this.handlerLogger = (options.logger ?? silentLogger).child({ component: 'handler', worker_id: this.id });
    this.debugEnabled = this.logger.isLevelEnabled('debug');
    this.coordination = options.coordination ?? libraryCoordination(options);
    const { monitor, consumerMetrics } = roleCoordination({
      settings: this.coordination,
      provider: options.provider,
      listenerState: options.listenerState,
      logger: this.logger,
      metrics: options.metrics,
    });
    this.monitor = monitor;
    this.loop = new QueueConsumer({
      name: this.namespaces.map(workerQueueName).join(','),
      provider: options.provider,
      queues: this.namespaces.map(workerQueueName),
      drain: (trigger) => this.drain(trigger),
      monitor: this.monitor,
      pollIntervalMs: this.coordination.pollIntervalMs,
      logger: this.logger,
      ...consumerMetrics,
    });
  }

  get activeExecutions(): number {
    return this.running.size;
  }

  /** Registers templates, checks every step has a handler, then starts claiming. Safe to call twice. */
  async start(): Promise<void> {
    if (this.started) return;
    const templates = (this.options.templates ?? []).filter((t) => this.namespaces.includes(t.namespace));
    this.registry.assertCovers(templates);
    assertStepCounts(templates, this.options.limits ?? DEFAULT_TASK_LIMITS);
    for (const template of templates) await registerTemplate(this.options.db, template);
    for (const namespace of this.namespaces)
      await this.options.provider.ensureQueue(workerQueueName(namespace));
    this.started = true;
    this.presence = new WorkerPresence(
      this.options.db,
      {
        workerId: this.id,
        namespaces: this.namespaces,
        capacity: this.capacity,
        version: this.options.version ?? 'unknown',
      },
      this.logger,
    );
    await this.presence.start();
    this.monitor.start();
    await this.loop.start();
    this.logger.info(
      {
        namespaces: this.namespaces,
        capacity: this.capacity,
        deployment_mode: this.coordination.mode,
        listen: this.coordination.listen,
        poll: this.coordination.poll,
      },
      'worker started',
    );
  }

  /** Claims now instead of at the next poll or error backoff: the database is back after an outage. */
  wake(): void {
    this.loop.wake();
  }

  /**
   * Stops claiming, lets running handlers finish for up to shutdownTimeoutMs, then aborts the rest and hands
   * their steps back at once (their lease messages become visible). Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.monitor.stop();
    await this.loop.stop();
    const deadline = this.options.shutdownTimeoutMs ?? 10_000;
    const drained = await Promise.race([
      Promise.all([...this.running.values()].map((r) => r.done)).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), deadline).unref()),
    ]);
    await Promise.all(this.pendingSignals);
    if (!drained) {
      // A snapshot: aborted handlers finish and leave `running` while the leases are being released.
      const interrupted = [...this.running.values()];
      this.shutdown.abort(new Error('worker shutting down'));
      const released = await Promise.all(
        interrupted.map(({ step, namespace }) =>
          this.options.provider
            .extendVisibility(workerQueueName(namespace), step.msgId, 0)
            .catch(() => false),
        ),
      );
      const handedBack = released.filter(Boolean).length;
      this.logger.info(
        { handed_back: handedBack, running: interrupted.length },
        'shutdown grace period over: running steps aborted and handed back to other workers',
      );
    }
    await this.presence?.stop();
  }

  /**
   * Claims and starts as many steps as capacity allows, namespaces taken in turn. A claim that returns fewer
   * steps than asked for found that namespace's queue without more visible work, so this drain does not ask
   * it again (a message sent meanwhile comes with its own wake-up). A poll-triggered drain reads at most
   * `batch_size` per claim (PollingOnly's and Hybrid's polling).
   */
  private async drain(trigger: DrainTrigger): Promise<DrainReport> {
    const lease = this.leaseSeconds;
    const perRead = trigger === 'poll' ? this.coordination.batchSize : Number.POSITIVE_INFINITY;
    const exhausted = new Set<string>();
    let found = 0;
    while (!this.stopping && this.running.size < this.capacity && exhausted.size < this.namespaces.length) {
      const namespace = this.namespaces[this.nextNamespace % this.namespaces.length] ?? '';
      this.nextNamespace += 1;
      if (exhausted.has(namespace)) continue;
      const room = Math.min(this.capacity - this.running.size, perRead);
      const claimed = await claimSteps(this.options.db, namespace, this.id, lease, room);
      if (claimed.length < room) {
        exhausted.add(namespace);
        this.backlog.delete(namespace);
      }
      found += claimed.length;
      for (const step of claimed) this.startStep(step, namespace);
    }
    // Whatever this drain did not read to the end (its room ran out, or there was none) may hold work.
    for (const namespace of this.namespaces) if (!exhausted.has(namespace)) this.backlog.add(namespace);
    // Never "full": a worker takes only what its free slots allow, and a freed slot wakes it again.
    return { found, processed: found, full: false };
  }

  private startStep(step: ClaimedStep, namespace: string): void {
    const done = this.runStep(step, namespace).then(
      (refilled) => {
        this.release(step);
        // Capacity freed and not refilled by the completing round trip: look for more work right away.
        if (!refilled) this.loop.wake();
      },
      (error: unknown) => {
        this.release(step);
        this.logger.error(
          { ...stepLogFields(step), err: error instanceof Error ? error.message : String(error) },
          'step run failed',
        );
        this.loop.wake();
      },
    );
    this.running.set(step.stepUuid, {
      step,
      namespace,
      done,
      leaseUntil: performance.now() + this.leaseSeconds * 1000,
    });
  }

  /** When the step's lease runs out, as far as this worker knows; 0 for a step it no longer runs. */
  private leaseUntil(step: ClaimedStep): number {
    const entry = this.running.get(step.stepUuid);
    return entry?.step === step ? entry.leaseUntil : 0;
  }

  /**
   * A failed attempt is what a developer looks for first, so it is logged at warn, whatever happens next: an
   * attempt that will be retried is as telling as the last one.
   */
  private reportFailure(report: StepFailureReport): void {
    if (this.options.onStepFailure !== undefined) {
      this.options.onStepFailure(report);
      return;
    }
    const { failure } = report;
    this.logger.warn(
      {
        correlation_id: report.correlationId,
        namespace: report.namespace,
        task_uuid: report.taskUuid,
        step_uuid: report.stepUuid,
        step: report.stepName,
        attempt: report.attempt,
        max_attempts: report.maxAttempts,
        error_type: failure.error_type,
        error_message: failure.message,
        will_retry: report.willRetry,
        ...(failure.code !== undefined && { error_code: failure.code }),
        ...(failure.backtrace !== undefined && { backtrace: failure.backtrace }),
      },
      `step ${report.stepName} of task ${report.taskUuid} failed (attempt ${report.attempt}/${report.maxAttempts}): ` +
        `${failure.error_type}: ${failure.message}; ${report.willRetry ? 'will retry' : 'no retry'}`,
    );
  }

  /** Frees the step's slot (once; a later run of the same step has an entry of its own). */
  private release(step: ClaimedStep): void {
    if (this.running.get(step.stepUuid)?.step === step) this.running.delete(step.stepUuid);
  }

  /**
   * Runs the step and stores its outcome. Resolves true when the storing round trip already looked for more
   * work for the freed slot (so no extra drain is needed), false when a drain should look.
   */
  private async runStep(step: ClaimedStep, namespace: string): Promise<boolean> {
    const lease = this.leaseSeconds;
    const queue = workerQueueName(namespace);
    const heartbeat = setInterval(
      () => {
        void this.options.provider.extendVisibility(queue, step.msgId, lease).then(
          (held) => {
            const entry = this.running.get(step.stepUuid);
            if (held && entry?.step === step) entry.leaseUntil = performance.now() + lease * 1000;
            if (!held) this.logger.warn(stepLogFields(step), 'step lease lost');
          },
          (error: unknown) =>
            this.logger.warn({ ...stepLogFields(step), err: String(error) }, 'lease heartbeat failed'),
        );
      },
      this.options.heartbeatIntervalMs ?? Math.max(100, (lease * 1000) / 3),
    );
    heartbeat.unref();
    let outcome: StepOutcome;
    const spans = this.options.tracing?.startStep(step, namespace, this.id, queue);
    try {
      const execute = (): Promise<StepOutcome> =>
        executeStep(step, this.registry.get(step.handlerCallable), {
          namespace,
          maxResultBytes: (this.options.limits ?? DEFAULT_TASK_LIMITS).maxResultBytes,
          defaultTimeoutMs: this.options.defaultTimeoutMs ?? 30_000,
          shutdownSignal: this.shutdown.signal,
          logger: this.handlerLogger,
        });
      outcome = await (spans === undefined ? execute() : spans.execute(execute));
    } finally {
      clearInterval(heartbeat);
    }
    if (this.shutdown.signal.aborted) {
      spans?.end(outcome, 'interrupted');
      return false;
    }
    const metrics = this.options.metrics;
    if (metrics !== undefined) {
      if (outcome.success) {
        metrics.recordStepExecution(namespace, step.stepName, 'success', outcome.executionMs / 1000);
      } else {
        metrics.recordStepExecution(
          namespace,
          step.stepName,
          stepFailureOutcome(outcome.failure),
          outcome.executionMs / 1000,
          outcome.failure.error_type,
        );
      }
    }
    const store = (): Promise<StoreResult> => this.storeOutcome(step, namespace, outcome);
    const { outcome: result, refilled } = await (spans === undefined
      ? store()
      : spans.storeResult(this.options.applyResultsInline ?? true, store));
    spans?.end(outcome, result);
    if (!outcome.success && result !== 'stale' && result !== 'unstored') {
      this.reportFailure({
        namespace,
        taskUuid: step.taskUuid,
        stepUuid: step.stepUuid,
        stepName: step.stepName,
        correlationId: step.correlationId,
        attempt: step.attempt,
        maxAttempts: step.maxAttempts,
        failure: outcome.failure,
        willRetry:
          result === 'retry' ||
          (result !== 'error' && outcome.failure.retryable && step.attempt < step.maxAttempts),
      });
    }
    if (this.debugEnabled) {
      this.logger.debug(
        {
          correlation_id: step.correlationId,
          task_uuid: step.taskUuid,
          step_uuid: step.stepUuid,
          step: step.stepName,
          attempt: step.attempt,
          success: outcome.success,
          outcome: result,
        },
        'step finished',
      );
    }
    return refilled;
  }

  /**
   * Stores the result and, in the same round trip, starts the steps it made ready for the freed slot: in a
   * chain, the next step is claimed without a notification or another commit. When the namespace may hold
   * work left behind (`backlog`), the same round trip also reads the queue for the room that is left.
   * Results are stored in batches, at most MAX_BATCHES_IN_FLIGHT on their way per namespace: a result that
   * finishes while they are busy waits and goes with the next batch (one commit and one queue read for all of
   * them); otherwise the results of one turn of the event loop go together at its end.
   * `refilled` is true when no drain is needed: the room is full, or no namespace may hold work left behind.
   * Work that becomes visible later comes with its own signal (or a retry's timer, or the poll).
   */
  private storeOutcome(step: ClaimedStep, namespace: string, outcome: StepOutcome): Promise<StoreResult> {
    return new Promise<StoreResult>((resolve) =>
      this.resultBatcher(namespace).add({ step, outcome, resolve }),
    );
  }

  private resultBatcher(namespace: string): CommitBatcher<PendingResult> {
    let batcher = this.resultBatchers.get(namespace);
    if (batcher === undefined) {
      batcher = new CommitBatcher<PendingResult>({
        maxBatch: MAX_RESULT_BATCH,
        maxInFlight: MAX_BATCHES_IN_FLIGHT,
        commit: async (batch) => {
          const stored = await this.storeBatch(namespace, batch);
          for (const item of batch)
            item.resolve(stored.get(item.step) ?? { outcome: 'unstored', refilled: false });
        },
      });
      this.resultBatchers.set(namespace, batcher);
    }
    return batcher;
  }

  private async storeBatch(
    namespace: string,
    batch: readonly PendingResult[],
  ): Promise<Map<ClaimedStep, StoreResult>> {
    const results = new Map<ClaimedStep, StoreResult>();
    for (let attempt = 0; ; attempt++) {
      try {
        // Every step of the batch still holds its slot; their slots and any other free one are the room.
        const room = this.stopping ? 0 : this.capacity - this.running.size + batch.length;
        const refill = this.backlog.has(namespace);
        const batchesInFlight = this.resultBatcher(namespace).inFlight;
        const storing = performance.now();
        const { outcomes, claimed, signals } = await completeManyAndClaim(
          this.options.db,
          batch.map(({ step, outcome }) => ({
            taskUuid: step.taskUuid,
            stepUuid: step.stepUuid,
            attempt: step.attempt,
            success: outcome.success,
            payload: outcome.success ? outcome.result : outcome.failure,
            executionMs: outcome.executionMs,
          })),
          {
            workerId: this.id,
            inline: this.options.applyResultsInline ?? true,
            namespace,
            leaseSeconds: this.leaseSeconds,
            limit: room,
            refill,
            // Alone on the pool, the signal rides in the commit (quickest); otherwise it goes after it.
            deferSignal: batchesInFlight > 1 || poolIsBusy(this.options.db),
          },
        );
        this.options.metrics?.stepDiscoveryDuration.observe(
          { role: 'worker' },
          (performance.now() - storing) / 1000,
        );
        // These slots are free now; the steps claimed for them (and for any other free slot) take over.
        for (const { step } of batch) this.release(step);
        for (const next of claimed) this.startStep(next, namespace);
        for (const signal of signals) this.sendSignal(signal);
        // A refill that found less than the room read the queue to its end.
        if (refill && claimed.length < room) this.backlog.delete(namespace);
        // No drain is needed when the room is full, or when no namespace may hold work left behind.
        const refilled = room > 0 && (claimed.length >= room || this.backlog.size === 0);
        for (const { step } of batch) {
          results.set(step, { outcome: outcomes.get(step.stepUuid) ?? 'stale', refilled });
        }
        return results;
      } catch (error) {
        if (batch.length > 1 && !isTransientDatabaseError(error)) {
          // One result must not take the others down with it: store them one by one.
          for (const item of batch) {
            for (const [step, result] of await this.storeBatch(namespace, [item])) results.set(step, result);
          }
          return results;
        }
        const reason = error instanceof Error ? error.message : String(error);
        if (!isTransientDatabaseError(error)) {
          // The leases will expire and another worker will run the steps again.
          return this.unstored(batch, results, 'error', reason, 'could not store step result');
        }
        const delay = Math.min(STORE_RETRY_MAX_MS, STORE_RETRY_FIRST_MS * 2 ** attempt);
        const stillHeld = batch.some(({ step }) => this.leaseUntil(step) > performance.now() + delay);
        if (!stillHeld || this.shutdown.signal.aborted) {
          // The database stayed out of reach past every lease: the steps run again wherever they are claimed
          // next. An outage, not a fault of this worker: a warning, as for every lost connection.
          return this.unstored(
            batch,
            results,
            'warn',
            reason,
            'step result not stored: the database was unreachable until the lease ran out; the step will run again',
          );
        }
        if (attempt === 0) {
          this.logger.warn(
            { namespace, results: batch.length, err: reason },
            'storing step results failed: the database is unreachable; retrying while their leases last',
          );
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Gives up storing a batch: each step logged (its lease expires, and the step runs again) and unstored. */
  private unstored(
    batch: readonly PendingResult[],
    results: Map<ClaimedStep, StoreResult>,
    level: 'error' | 'warn',
    reason: string,
    message: string,
  ): Map<ClaimedStep, StoreResult> {
    for (const { step } of batch) {
      this.logger[level]({ ...stepLogFields(step), err: reason }, message);
      results.set(step, { outcome: 'unstored', refilled: false });
    }
    return results;
  }

  /** After the durable commit, in a transaction of its own (see signalSoon); a hint only. */
  private sendSignal(signal: PendingSignal): void {
    const sent = signalSoon(this.options.db, signal);
    this.pendingSignals.add(sent);
    void sent.finally(() => this.pendingSignals.delete(sent));
  }
}

/** Library use without a configuration: Hybrid (or polling only with listen: false). */
function libraryCoordination(options: WorkerOptions): WorkerCoordination {
  const interval = options.pollIntervalMs === undefined ? 1_000 : options.pollIntervalMs;
  return {
    ...defaultCoordination(interval),
    listen: options.listen ?? true,
    batchSize: options.maxConcurrentHandlers ?? 10,
    pollIntervalMs: interval ?? 1_000,
  };
}

/** The fields that tie a log line to its step: correlation_id, task_uuid, step_uuid. */
function stepLogFields(step: ClaimedStep): Record<string, string> {
  return { correlation_id: step.correlationId, task_uuid: step.taskUuid, step_uuid: step.stepUuid };
}

/**
 * Templates with more steps than `[limits] max_steps_per_task` are refused when a worker starts, before anything
 * is registered: every task of theirs would be refused at creation.
 * @throws TemplateError TASKER_INVALID_TEMPLATE naming each template and the limit
 */
function assertStepCounts(
  templates: readonly TaskTemplate[],
  limits: Pick<TaskLimits, 'maxStepsPerTask'>,
): void {
  const problems = templates.flatMap((template) => {
    const problem = stepCountProblem(template.steps.length, limits);
    return problem === undefined
      ? []
      : [
          {
            file: `template ${template.namespace}/${template.name}@${template.version}`,
            path: 'steps',
            line: null,
            column: null,
            message: problem,
            hint: 'split the workflow, or raise [limits] max_steps_per_task for workers and orchestration alike',
          },
        ];
  });
  if (problems.length > 0) throw new TemplateError(problems);
}
