import { describe, expect, it } from 'vitest';
import type { ClaimedStep } from '../../../src/db/queries/claimSteps.ts';
import { loadWorkerModule } from '../../../src/services/handlerModule.ts';
import {
  defineHandler,
  isPermanentError,
  isRetryableError,
  PermanentError,
  RetryableError,
} from '../../../src/worker/handlerApi.ts';
import { executeStep } from '../../../src/worker/stepExecutor.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * What another copy of Tasker (the package's dist beside a checkout's src, or two installed versions) throws:
 * classes of its own, unrelated to ours, that carry the same registry-symbol markers.
 */
const OTHER_COPY_PERMANENT_MARKER: unique symbol = Symbol.for('tasker.permanent_error');
class OtherCopyPermanentError extends Error {
  readonly [OTHER_COPY_PERMANENT_MARKER] = true;
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'PermanentError';
  }
}

const step: ClaimedStep = {
  msgId: '1',
  taskUuid: '00000000-0000-7000-8000-000000000001',
  stepUuid: '00000000-0000-7000-8000-000000000002',
  stepName: 'charge',
  handlerCallable: 'Payments.Charge',
  handlerInitialization: {},
  taskContext: {},
  attempt: 1,
  maxAttempts: 3,
  timeoutSeconds: 5,
  correlationId: '00000000-0000-7000-8000-000000000003',
  dependencyResults: {},
};

async function failureOf(thrown: unknown) {
  const outcome = await executeStep(
    step,
    defineHandler('Payments.Charge', () => {
      throw thrown;
    }),
    { namespace: 'payments', defaultTimeoutMs: 5_000, shutdownSignal: new AbortController().signal },
  );
  if (outcome.success) throw new Error('the handler threw, yet the step succeeded');
  return outcome.failure;
}

describe('handler errors are recognised by their marker, not instanceof', () => {
  it('a PermanentError of another copy is permanent, with its code', async () => {
    const error = new OtherCopyPermanentError('card declined', 'card_declined');
    expect(error instanceof PermanentError).toBe(false);
    expect(await failureOf(error)).toEqual({
      message: 'card declined',
      error_type: 'permanent_error',
      retryable: false,
      code: 'card_declined',
    });
  });

  it('a RetryableError of another copy (a plain object) keeps its retry-after hint and code', async () => {
    const error = {
      [Symbol.for('tasker.retryable_error')]: true,
      name: 'RetryableError',
      message: 'rate limited',
      retryAfterMs: 1234.4,
      code: 'rate_limited',
    };
    expect(await failureOf(error)).toEqual({
      message: 'rate limited',
      error_type: 'retryable_error',
      retryable: true,
      retry_after_ms: 1234,
      code: 'rate_limited',
    });
  });

  it("a foreign error's fields are checked: a non-numeric retry-after and an empty code are dropped", async () => {
    const error = Object.assign(new Error('flaky'), {
      [Symbol.for('tasker.retryable_error')]: true,
      retryAfterMs: 'soon',
      code: '',
    });
    expect(await failureOf(error)).toEqual({
      message: 'flaky',
      error_type: 'retryable_error',
      retryable: true,
    });
  });

  it('our own classes carry the markers; an error without one, or with a false one, retries as before', async () => {
    expect(isPermanentError(new PermanentError('x'))).toBe(true);
    expect(isRetryableError(new RetryableError('x', { retryAfterMs: 10 }))).toBe(true);
    expect(isPermanentError(new RetryableError('x'))).toBe(false);
    expect(isPermanentError({ [Symbol.for('tasker.permanent_error')]: 'yes' })).toBe(false);
    expect(await failureOf(new PermanentError('gone', { code: 'gone' }))).toMatchObject({
      error_type: 'permanent_error',
      retryable: false,
      code: 'gone',
    });
    const plain = new Error('boom');
    plain.name = 'PermanentError';
    // Not a Tasker error, so its stack is kept as for any unexpected error.
    expect(await failureOf(plain)).toEqual({
      message: 'boom',
      error_type: 'PermanentError',
      retryable: true,
      backtrace: expect.arrayContaining([expect.stringContaining('handlerErrorMarkers.test.ts:')]) as unknown,
    });
  });

  it('a handlers module loads StepHandler subclasses and registries of another copy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tasker-other-copy-'));
    const file = join(dir, 'handlers.mjs');
    writeFileSync(
      file,
      `// A StepHandler subclass and a registry of "another copy": same markers and shape, not our classes.
class OtherStepHandler { static [Symbol.for('tasker.step_handler_class')] = true;
  get name() { return this.constructor.handlerName; } run(context) { return this.call(context); } }
export class Refund extends OtherStepHandler { static handlerName = 'Payments.Refund'; call() { return 1; } }
const ship = { name: 'Shipping.Ship', run: () => 2 };
export const registry = { names: () => ['Shipping.Ship'], get: (n) => (n === 'Shipping.Ship' ? ship : undefined), register() {} };
`,
    );
    const { handlers } = await loadWorkerModule(file);
    expect(handlers.map((h) => h.name).sort()).toEqual(['Payments.Refund', 'Shipping.Ship']);
  });
});
