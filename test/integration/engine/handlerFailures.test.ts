/**
 * A failing handler is visible: the stored step error keeps the stack of an unexpected error (bounded, with the
 * handler's file and line), each failed attempt is logged at warn with the task, step, attempt and whether it
 * will retry, and handlers log through `ctx.logger` with the step's fields on every line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { defineHandler, PermanentError } from '../../../src/worker/handlerApi.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { stepsByName } from '../../helpers/engine/inspect.ts';
import { createMemoryLogger, LOG_LEVEL } from '../../helpers/engine/memoryLogger.ts';
import { waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const THIS_FILE = new URL(import.meta.url).pathname;

/** Recursion deep enough that the bounds (20 frames, 4 KB) apply. */
function readOrderId(order: { order_id: string } | undefined, depth: number): string {
  if (depth > 0) return readOrderId(order, depth - 1);
  return (order as { order_id: string }).order_id;
}

const handlers = [
  defineHandler('Visible.Broken', (ctx) => {
    ctx.logger.info({ order_hint: 'none' }, 'reading the order');
    return readOrderId(undefined, 40);
  }),
  defineHandler('Visible.Refuses', () => {
    throw new PermanentError('card declined', { code: 'DECLINED' });
  }),
];

const TEMPLATE = `
name: broken_order
namespace_name: visible
version: 1.0.0
steps:
  - name: validate_order
    handler: { callable: Visible.Broken }
    retry: { max_attempts: 2, backoff: fixed, backoff_base_ms: 10 }
`;

const DECLINED = `
name: declined_order
namespace_name: visible
version: 1.0.0
steps:
  - name: charge
    handler: { callable: Visible.Refuses }
`;

const getTestDb = useTestDatabase();

describe('a failing handler is visible', () => {
  let db: Database;
  let cluster: Cluster;
  const logs = createMemoryLogger('info');

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 6 });
    cluster = await startCluster({
      db,
      inline: true,
      handlers,
      templates: [
        parseTaskTemplate(TEMPLATE, 'broken_order.yaml'),
        parseTaskTemplate(DECLINED, 'declined_order.yaml'),
      ],
      logger: logs.logger,
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('keeps the bounded stack with the handler file:line, logs every attempt at warn, and gives handlers a logger', async () => {
    const { taskUuid } = await createTask(db, {
      namespace: 'visible',
      name: 'broken_order',
      version: '1.0.0',
    });
    const declined = await createTask(db, { namespace: 'visible', name: 'declined_order', version: '1.0.0' });
    await waitForTask(db, taskUuid, 'error');
    await waitForTask(db, declined.taskUuid, 'error');
    const steps = await stepsByName(db, taskUuid);
    const declinedSteps = await stepsByName(db, declined.taskUuid);

    const error = steps.validate_order?.last_error as Record<string, unknown>;
    expect(error).toMatchObject({ error_type: 'TypeError', retryable: true, attempt: 2 });
    expect(error.message).toContain("reading 'order_id'");
    const backtrace = error.backtrace as string[];
    expect(backtrace[0]).toMatch(new RegExp(`at readOrderId \\(${THIS_FILE}:\\d+:\\d+\\)`));
    expect(backtrace.length).toBeLessThanOrEqual(20);
    expect(backtrace.join('').length).toBeLessThanOrEqual(4096);
    // The step runner's and Node's own frames are not the handler's.
    expect(backtrace.some((frame) => frame.includes('stepExecutor') || frame.includes('node:internal'))).toBe(
      false,
    );

    // A Tasker error says what went wrong on purpose: no stack.
    expect(declinedSteps.charge?.last_error).toEqual({
      message: 'card declined',
      error_type: 'permanent_error',
      retryable: false,
      code: 'DECLINED',
      attempt: 1,
    });

    const failures = logs
      .atLeast(LOG_LEVEL.warn)
      .filter(
        (entry) =>
          (entry.task_uuid === taskUuid || entry.task_uuid === declined.taskUuid) &&
          entry.component === 'worker',
      );
    const attempts = failures
      .filter((entry) => entry.step === 'validate_order')
      .map((entry) => [entry.attempt, entry.max_attempts, entry.will_retry]);
    expect(attempts).toEqual([
      [1, 2, true],
      [2, 2, false],
    ]);
    const last = failures.find((entry) => entry.step === 'validate_order' && entry.attempt === 2);
    expect(last?.level).toBe(LOG_LEVEL.warn);
    expect(last?.error_type).toBe('TypeError');
    expect(last?.msg).toMatch(
      new RegExp(
        `^step validate_order of task ${taskUuid} failed \\(attempt 2/2\\): TypeError: .*order_id.*; no retry$`,
      ),
    );
    expect(String((last?.backtrace as string[])[0])).toContain(THIS_FILE);
    expect(failures.filter((entry) => entry.step === 'charge').map((entry) => entry.will_retry)).toEqual([
      false,
    ]);

    const handlerLines = logs
      .withMessage('reading the order')
      .filter((entry) => entry.task_uuid === taskUuid);
    expect(
      handlerLines.map((entry) => [entry.step, entry.attempt, entry.max_attempts, entry.order_hint]),
    ).toEqual([
      ['validate_order', 1, 2, 'none'],
      ['validate_order', 2, 2, 'none'],
    ]);
    expect(handlerLines[0]?.step_uuid).toBe(steps.validate_order?.workflow_step_uuid);
  });
});
