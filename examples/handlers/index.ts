/**
 * Handlers for the example templates in ../templates/. They compute real values from their inputs and
 * dependency results, so tests and the demo check the data that flows along the edges, not only states.
 * Each handler reads its wiring (which dependency, which factor) from the step's `initialization`.
 */
import { defineHandler, PermanentError, RetryableError } from '../../src/worker/handlerApi.ts';
import type { StepContext } from '../../src/worker/handlerApi.ts';

interface Valued {
  value: number;
}

function numberFrom(ctx: StepContext, key: string): number {
  const from = ctx.config[key];
  if (typeof from !== 'string')
    throw new PermanentError(`step "${ctx.stepName}" needs initialization.${key}`);
  return ctx.dependency<Valued>(from).value;
}

function inputNumber(ctx: StepContext): number {
  const key = typeof ctx.config.input === 'string' ? ctx.config.input : 'even_number';
  const value = ctx.input[key];
  if (typeof value !== 'number') throw new PermanentError(`the task context needs a number "${key}"`);
  return value;
}

export const mathHandlers = [
  defineHandler('Math.SquareInput', (ctx): Valued => {
    const n = inputNumber(ctx);
    return { value: n * n };
  }),
  defineHandler('Math.SquarePrevious', (ctx): Valued => {
    const previous = numberFrom(ctx, 'previous');
    return { value: previous * previous };
  }),
  defineHandler('Math.Identity', (ctx): Valued => ({ value: inputNumber(ctx) })),
  defineHandler('Math.Multiply', (ctx): Valued => ({
    value: numberFrom(ctx, 'from') * Number(ctx.config.factor),
  })),
  defineHandler('Math.Add', (ctx): Valued => ({
    value: numberFrom(ctx, 'from') + Number(ctx.config.amount),
  })),
  // Waits ctx.input.ms (default 300) first, like a slow downstream call; stops at once when aborted.
  defineHandler('Math.SlowAdd', async (ctx): Promise<Valued> => {
    const ms = typeof ctx.input.ms === 'number' ? ctx.input.ms : 300;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new RetryableError('aborted before finishing'));
      });
    });
    const base = typeof ctx.config.from === 'string' ? numberFrom(ctx, 'from') : inputNumber(ctx);
    return { value: base + Number(ctx.config.amount) };
  }),
  defineHandler('Math.Sum', (ctx): Valued => {
    const of = ctx.config.of;
    if (!Array.isArray(of)) throw new PermanentError(`step "${ctx.stepName}" needs initialization.of`);
    return { value: of.reduce((sum: number, name) => sum + ctx.dependency<Valued>(String(name)).value, 0) };
  }),
];

export const resilienceHandlers = [
  defineHandler('Resilience.FailTimes', (ctx) => {
    const failures = Number(ctx.config.failures ?? 1);
    if (ctx.attempt <= failures) {
      throw new RetryableError(`simulated outage on attempt ${ctx.attempt} of ${ctx.maxAttempts}`);
    }
    return { succeeded_on_attempt: ctx.attempt };
  }),
  defineHandler('Resilience.AlwaysRetryable', (ctx) => {
    throw new RetryableError(`still failing on attempt ${ctx.attempt}`);
  }),
  defineHandler('Resilience.AlwaysPermanent', () => {
    throw new PermanentError('the request is invalid and will never succeed', { code: 'INVALID_REQUEST' });
  }),
  defineHandler('Resilience.Echo', (ctx) => {
    const from = ctx.config.from;
    return typeof from === 'string' ? { echoed: ctx.dependency(from) } : { value: ctx.config.value ?? null };
  }),
];

export default [...mathHandlers, ...resilienceHandlers];
