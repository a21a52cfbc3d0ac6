import { ValidationError } from '../domain/errors.ts';

/** PGMQ's limit: `q_<name>`, `a_<name>` and their index names must fit PostgreSQL's 63-byte identifiers. */
export const MAX_QUEUE_NAME_LENGTH = 47;

const QUEUE_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Checked before any SQL is built or sent; the database checks again (pgmq.validate_queue_name).
 * @throws ValidationError with code TASKER_INVALID_QUEUE_NAME
 */
export function assertValidQueueName(queue: unknown): asserts queue is string {
  if (
    typeof queue !== 'string' ||
    queue.length === 0 ||
    queue.length > MAX_QUEUE_NAME_LENGTH ||
    !QUEUE_NAME.test(queue)
  ) {
    const shown = typeof queue === 'string' ? JSON.stringify(queue) : String(queue);
    throw new ValidationError(
      'TASKER_INVALID_QUEUE_NAME',
      `invalid queue name ${shown}: use 1-${MAX_QUEUE_NAME_LENGTH} characters of lowercase letters, digits and underscores, not starting with a digit (for example worker_payments_queue)`,
      { details: { queue: shown } },
    );
  }
}

/** Mirrors tasker.queue_namespace() in SQL: which `pgmq_message_ready.<namespace>` channel a queue signals on. */
export function queueNamespace(queue: string): string {
  if (queue.startsWith('orchestration')) return 'orchestration';
  const worker = /^worker_(.+)_queue$/.exec(queue);
  if (worker?.[1] !== undefined) return worker[1];
  const plain = /^(.+)_queue$/.exec(queue);
  if (plain?.[1] !== undefined) return plain[1];
  return 'default';
}

/**
 * The channel without a namespace: every signal is sent on it as well, and the seed's troubleshooting guide checks
 * LISTEN/NOTIFY with `NOTIFY pgmq_message_ready, 'test'` on it, which orchestrators answer by reading their queues.
 */
export const MESSAGE_READY_CHANNEL = 'pgmq_message_ready';

export function messageReadyChannel(namespace: string): string {
  return `${MESSAGE_READY_CHANNEL}.${namespace}`;
}

export function workerQueueName(namespace: string): string {
  return `worker_${namespace}_queue`;
}
