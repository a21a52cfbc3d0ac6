import { describe, expect, it } from 'vitest';
import {
  assertValidQueueName,
  MAX_QUEUE_NAME_LENGTH,
  queueNamespace,
  workerQueueName,
} from '../../src/messaging/queueName.ts';
import { ValidationError } from '../../src/domain/errors.ts';

describe('queue names', () => {
  it.each([
    'worker_payments_queue',
    'orchestration_step_results',
    '_private',
    'a',
    'a'.repeat(MAX_QUEUE_NAME_LENGTH),
  ])('accepts %j', (name) => {
    expect(() => assertValidQueueName(name)).not.toThrow();
  });

  it.each([
    '',
    'a'.repeat(MAX_QUEUE_NAME_LENGTH + 1),
    'Payments',
    'with space',
    'semi;colon',
    "quote'",
    '1abc',
    'ünïcode',
    42,
    null,
  ])('rejects %j with a ValidationError that says what is allowed', (name) => {
    let caught: unknown;
    try {
      assertValidQueueName(name);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect(caught).toMatchObject({ code: 'TASKER_INVALID_QUEUE_NAME' });
    expect((caught as Error).message).toContain(`1-${MAX_QUEUE_NAME_LENGTH} characters`);
  });

  it('maps queues to notification namespaces', () => {
    expect(queueNamespace(workerQueueName('payments'))).toBe('payments');
    expect(queueNamespace('orchestration_task_requests')).toBe('orchestration');
    expect(queueNamespace('inventory_queue')).toBe('inventory');
    expect(queueNamespace('misc')).toBe('default');
  });
});
