/**
 * Records every handler execution (which step, which attempt, which worker, when, how it ended) so engine
 * tests can assert "each handler ran exactly once" and "never more than N at once".
 */
import type { StepContext, StepHandlerDefinition } from '../../../src/worker/handlerApi.ts';

/**
 * Milliseconds since the epoch from the monotonic clock: Date.now() follows the wall clock, which a VM may
 * step, and durations between two readings (a timeout's, a retry's spacing) must not move with it.
 */
const now = (): number => performance.timeOrigin + performance.now();

export interface Execution {
  handler: string;
  stepName: string;
  stepUuid: string;
  taskUuid: string;
  attempt: number;
  workerId: string;
  /** now() when the handler was called. */
  startedAt: number;
  /** now() when the handler returned or threw; null while it runs. */
  endedAt: number | null;
  outcome: 'running' | 'success' | 'error';
  /** now() when ctx.signal fired, if it did. */
  signalAbortedAt: number | null;
  /** The abort reason's message, if the signal fired. */
  abortReason: string | null;
}

export class ExecutionRecorder {
  readonly executions: Execution[] = [];
  private running = 0;
  private peak = 0;

  /** Handlers running right now, across every worker sharing this recorder. */
  get concurrent(): number {
    return this.running;
  }

  /** The most handlers that ever ran at once. */
  get maxConcurrent(): number {
    return this.peak;
  }

  /**
   * The same handlers, recording each call. `workerId` is read at call time, so it may be set after the
   * worker that owns the handlers is constructed.
   */
  wrap(handlers: readonly StepHandlerDefinition[], workerId: () => string): StepHandlerDefinition[] {
    return handlers.map((handler) => ({
      name: handler.name,
      run: (ctx: StepContext): Promise<unknown> => this.record(handler, ctx, workerId()),
    }));
  }

  private async record(handler: StepHandlerDefinition, ctx: StepContext, workerId: string): Promise<unknown> {
    const execution: Execution = {
      handler: handler.name,
      stepName: ctx.stepName,
      stepUuid: ctx.stepUuid,
      taskUuid: ctx.taskUuid,
      attempt: ctx.attempt,
      workerId,
      startedAt: now(),
      endedAt: null,
      outcome: 'running',
      signalAbortedAt: null,
      abortReason: null,
    };
    ctx.signal.addEventListener(
      'abort',
      () => {
        execution.signalAbortedAt = now();
        const reason: unknown = ctx.signal.reason;
        execution.abortReason = reason instanceof Error ? reason.message : String(reason);
      },
      { once: true },
    );
    this.executions.push(execution);
    this.running += 1;
    this.peak = Math.max(this.peak, this.running);
    try {
      const result = await handler.run(ctx);
      execution.outcome = 'success';
      return result;
    } catch (error) {
      execution.outcome = 'error';
      throw error;
    } finally {
      execution.endedAt = now();
      this.running -= 1;
    }
  }

  forTask(taskUuid: string): Execution[] {
    return this.executions.filter((e) => e.taskUuid === taskUuid);
  }

  forStep(stepUuid: string): Execution[] {
    return this.executions.filter((e) => e.stepUuid === stepUuid);
  }

  /** How many times each step's handler ran, by step uuid. */
  runsPerStep(taskUuids?: readonly string[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const e of this.executions) {
      if (taskUuids !== undefined && !taskUuids.includes(e.taskUuid)) continue;
      counts.set(e.stepUuid, (counts.get(e.stepUuid) ?? 0) + 1);
    }
    return counts;
  }

  /** Steps whose handler ran more than once, as "task/step xN" lines (empty when none did). */
  stepsRunMoreThanOnce(taskUuids?: readonly string[]): string[] {
    return [...this.runsPerStep(taskUuids)]
      .filter(([, count]) => count > 1)
      .map(([stepUuid, count]) => {
        const first = this.executions.find((e) => e.stepUuid === stepUuid);
        return `${first?.taskUuid ?? '?'}/${first?.stepName ?? stepUuid} x${count}`;
      });
  }
}

/** A promise with its resolve/reject exposed: lets a test decide when a handler finishes. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Waits for `gate`, but gives up (throwing the abort reason) when the step's signal fires, so a handler
 * blocked on a gate never outlives its worker's shutdown.
 */
export function awaitGate<T>(gate: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      const reason: unknown = signal.reason;
      reject(reason instanceof Error ? reason : new Error(String(reason)));
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    gate.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
