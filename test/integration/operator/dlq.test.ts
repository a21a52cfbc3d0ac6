/**
 * The dead-letter queue: entries written by the staleness detector (and, for the filters, rows of the other
 * reasons written directly), listed with filters and pagination, read one by one and per task, counted by
 * dlqStats, and closed once by updateDlqEntry. A task keeps at most one pending entry.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import type { Database } from '../../../src/db/database.ts';
import {
  dlqStats,
  getDlqEntriesForTask,
  getDlqEntry,
  listDlqEntries,
  updateDlqEntry,
} from '../../../src/db/queries/dlq.ts';
import type { DlqEntry } from '../../../src/db/queries/dlq.ts';
import { applyStepAction } from '../../../src/db/queries/stepActions.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../../src/domain/errors.ts';
import { StalenessDetector } from '../../../src/orchestration/stalenessDetector.ts';
import { stepsByName, taskRow } from '../../helpers/engine/inspect.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';
import { backdate, claim, createTaskOf, inlineTemplate } from './operatorHelpers.ts';

const templateIn = (ns: string, name: string) =>
  inlineTemplate(`
name: ${name}
namespace_name: ${ns}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: only
    handler: { callable: Dlq.Only }
`);

const alpha = templateIn('op_dlq_alpha', 'alpha_job');
const beta = templateIn('op_dlq_beta', 'beta_job');

const getTestDb = useTestDatabase();

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('dead-letter queue', () => {
  let db: Database;
  let detector: StalenessDetector;
  /** Stale tasks moved by the detector, in the order their entries are dated (oldest first). */
  const stale: { taskUuid: string; namespace: string }[] = [];
  /** Tasks with entries of other reasons, written directly. */
  let manualTask = '';
  let closedTask = '';
  let closedTask2 = '';

  const insertEntry = async (
    taskUuid: string,
    fields: { reason: string; minutesAgo: number; status?: string; resolvedAfterMinutes?: number },
  ): Promise<void> => {
    await db.query(
      `INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, dlq_timestamp, resolution_status,
                                     resolution_timestamp, resolved_by)
       VALUES ($1, 'steps_in_process', $2, now() - make_interval(mins => $3), $4,
               CASE WHEN $5::int IS NULL THEN NULL ELSE now() - make_interval(mins => $3) + make_interval(mins => $5::int) END,
               CASE WHEN $5::int IS NULL THEN NULL ELSE 'ops' END)`,
      [
        taskUuid,
        fields.reason,
        fields.minutesAgo,
        fields.status ?? 'pending',
        fields.resolvedAfterMinutes ?? null,
      ],
    );
  };

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 4 });
    detector = new StalenessDetector({
      db,
      thresholds: {
        waitingForDependenciesMinutes: 60,
        waitingForRetryMinutes: 30,
        stepsInProcessMinutes: 30,
        taskMaxLifetimeMinutes: 1440,
      },
      intervalMs: 60_000,
      batchSize: 100,
      processorUuid: uuidv7(),
    });
    // Three stale tasks in alpha, two in beta.
    for (const [template, count] of [
      [alpha, 3],
      [beta, 2],
    ] as const) {
      for (let i = 0; i < count; i++) {
        const taskUuid = await createTaskOf(db, template, { n: i });
        await backdate(db, taskUuid, 45);
        stale.push({ taskUuid, namespace: template.namespace });
      }
    }
    const moved = await detector.runOnce();
    expect(moved.filter((r) => r.action === 'moved_to_error')).toHaveLength(5);
    // Spread their timestamps: 50, 40, 30, 20, 10 minutes ago, in creation order.
    for (const [index, { taskUuid }] of stale.entries()) {
      await db.query(
        `UPDATE tasker.tasks_dlq SET dlq_timestamp = now() - make_interval(mins => $2) WHERE task_uuid = $1`,
        [taskUuid, 50 - index * 10],
      );
    }
    manualTask = await createTaskOf(db, beta, { manual: true });
    await insertEntry(manualTask, { reason: 'manual_dlq', minutesAgo: 5 });
    closedTask = await createTaskOf(db, alpha, { closed: 1 });
    await insertEntry(closedTask, {
      reason: 'max_retries_exceeded',
      minutesAgo: 200,
      status: 'permanently_failed',
      resolvedAfterMinutes: 30,
    });
    closedTask2 = await createTaskOf(db, alpha, { closed: 2 });
    await insertEntry(closedTask2, {
      reason: 'staleness_timeout',
      minutesAgo: 300,
      status: 'manually_resolved',
      resolvedAfterMinutes: 60,
    });
  });

  it('lists every entry newest first, with namespace, template name and the snapshot', async () => {
    const { entries, total } = await listDlqEntries(db, { limit: 100, offset: 0 });
    expect(total).toBe(8);
    expect(entries.map((e) => e.task_uuid)).toEqual([
      manualTask,
      ...[...stale].reverse().map((s) => s.taskUuid),
      closedTask,
      closedTask2,
    ]);
    const newestStale = entries[1] as DlqEntry;
    expect(newestStale).toMatchObject({
      namespace: 'op_dlq_beta',
      task_name: 'beta_job',
      original_state: 'steps_in_process',
      dlq_reason: 'staleness_timeout',
      resolution_status: 'pending',
      resolution_timestamp: null,
      resolution_notes: null,
      resolved_by: null,
      metadata: { threshold_minutes: 30, exceeded: 'state_threshold' },
      task_snapshot: {
        task_uuid: newestStale.task_uuid,
        steps: [{ name: 'only', current_state: 'enqueued' }],
      },
    });
    expect(newestStale.dlq_timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.now() - Date.parse(newestStale.dlq_timestamp)).toBeGreaterThan(9 * 60_000);
    expect(Date.now() - Date.parse(newestStale.dlq_timestamp)).toBeLessThan(11 * 60_000);
  });

  it('pages through the entries without gaps or repeats, the total always the whole count', async () => {
    const seen: string[] = [];
    for (let offset = 0; offset < 10; offset += 3) {
      const page = await listDlqEntries(db, { limit: 3, offset });
      expect(page.total).toBe(8);
      expect(page.entries.length).toBe(Math.max(0, Math.min(3, 8 - offset)));
      seen.push(...page.entries.map((e) => e.dlq_entry_uuid));
    }
    expect(seen).toHaveLength(8);
    expect(new Set(seen).size).toBe(8);
    const all = await listDlqEntries(db, { limit: 100, offset: 0 });
    expect(seen).toEqual(all.entries.map((e) => e.dlq_entry_uuid));
  });

  it('filters by resolution status, reason and namespace, alone and together', async () => {
    const pending = await listDlqEntries(db, { resolutionStatus: 'pending', limit: 100, offset: 0 });
    expect(pending.total).toBe(6);
    expect(pending.entries.every((e) => e.resolution_status === 'pending')).toBe(true);

    const staleness = await listDlqEntries(db, { reason: 'staleness_timeout', limit: 100, offset: 0 });
    expect(staleness.total).toBe(6);
    const manual = await listDlqEntries(db, { reason: 'manual_dlq', limit: 100, offset: 0 });
    expect(manual.entries.map((e) => e.task_uuid)).toEqual([manualTask]);

    const betaEntries = await listDlqEntries(db, { namespace: 'op_dlq_beta', limit: 100, offset: 0 });
    expect(betaEntries.total).toBe(3);
    expect(new Set(betaEntries.entries.map((e) => e.namespace))).toEqual(new Set(['op_dlq_beta']));

    const combined = await listDlqEntries(db, {
      namespace: 'op_dlq_alpha',
      reason: 'staleness_timeout',
      resolutionStatus: 'pending',
      limit: 2,
      offset: 1,
    });
    expect(combined.total).toBe(3);
    expect(combined.entries.map((e) => e.task_uuid)).toEqual([stale[1]?.taskUuid, stale[0]?.taskUuid]);

    expect((await listDlqEntries(db, { namespace: 'nobody', limit: 10, offset: 0 })).total).toBe(0);
    expect(
      await caught(listDlqEntries(db, { resolutionStatus: 'resolved', limit: 10, offset: 0 })),
    ).toBeInstanceOf(ValidationError);
    expect(await caught(listDlqEntries(db, { reason: 'tired', limit: 10, offset: 0 }))).toMatchObject({
      code: 'TASKER_INVALID_ARGUMENT',
    });
    expect(await caught(listDlqEntries(db, { limit: 0, offset: 0 }))).toBeInstanceOf(ValidationError);
    expect(await caught(listDlqEntries(db, { limit: 10, offset: -1 }))).toBeInstanceOf(ValidationError);
  });

  it('reads one entry, and the entries of a task', async () => {
    const { entries } = await listDlqEntries(db, { limit: 1, offset: 0 });
    const first = entries[0] as DlqEntry;
    expect(await getDlqEntry(db, first.dlq_entry_uuid)).toEqual(first);
    expect(await getDlqEntry(db, uuidv7())).toBeUndefined();
    expect(await getDlqEntry(db, 'not-a-uuid')).toBeUndefined();
    expect(await getDlqEntriesForTask(db, manualTask)).toEqual([first]);
    expect(await getDlqEntriesForTask(db, uuidv7())).toEqual([]);
  });

  it('counts by reason and status, finds the oldest pending entry and the mean time to resolution', async () => {
    const stats = await dlqStats(db);
    expect(stats).toMatchObject({
      total: 8,
      by_reason: {
        staleness_timeout: 6,
        manual_dlq: 1,
        max_retries_exceeded: 1,
        dependency_cycle_detected: 0,
        worker_unavailable: 0,
      },
      by_status: { pending: 6, manually_resolved: 1, permanently_failed: 1, cancelled: 0 },
      // (30 + 60) / 2
      avg_resolution_minutes: 45,
    });
    const oldest = await getDlqEntriesForTask(db, stale[0]?.taskUuid ?? '');
    expect(stats.oldest_pending_at).toBe(oldest[0]?.dlq_timestamp);
  });

  it('closes a pending entry once; a second update conflicts; unknown entries and statuses are refused', async () => {
    const [entry] = await getDlqEntriesForTask(db, stale[2]?.taskUuid ?? '');
    if (entry === undefined) throw new Error('no entry');
    const closed = await updateDlqEntry(db, entry.dlq_entry_uuid, {
      resolution_status: 'manually_resolved',
      resolution_notes: 'steps reset, task completed',
      resolved_by: 'dana',
    });
    expect(closed).toMatchObject({
      dlq_entry_uuid: entry.dlq_entry_uuid,
      task_uuid: entry.task_uuid,
      namespace: 'op_dlq_alpha',
      resolution_status: 'manually_resolved',
      resolution_notes: 'steps reset, task completed',
      resolved_by: 'dana',
      dlq_timestamp: entry.dlq_timestamp,
    });
    expect(Math.abs(Date.parse(closed.resolution_timestamp ?? '') - Date.now())).toBeLessThan(60_000);
    expect(await getDlqEntry(db, entry.dlq_entry_uuid)).toEqual(closed);

    const again = await caught(
      updateDlqEntry(db, entry.dlq_entry_uuid, { resolution_status: 'cancelled', resolved_by: 'eve' }),
    );
    expect(again).toBeInstanceOf(ConflictError);
    expect(again).toMatchObject({
      code: 'TASKER_DLQ_ENTRY_RESOLVED',
      details: { current_status: 'manually_resolved', resolved_by: 'dana' },
    });
    expect((await getDlqEntry(db, entry.dlq_entry_uuid))?.resolved_by).toBe('dana');

    const unknown = await caught(updateDlqEntry(db, uuidv7(), { resolution_status: 'cancelled' }));
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unknown).toMatchObject({ code: 'TASKER_DLQ_ENTRY_NOT_FOUND' });
    expect(await caught(updateDlqEntry(db, 'nope', { resolution_status: 'cancelled' }))).toBeInstanceOf(
      NotFoundError,
    );
    const [other] = await getDlqEntriesForTask(db, stale[3]?.taskUuid ?? '');
    for (const status of ['pending', 'resolved', '']) {
      expect(
        await caught(updateDlqEntry(db, other?.dlq_entry_uuid ?? '', { resolution_status: status })),
      ).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT' });
    }
    expect((await getDlqEntry(db, other?.dlq_entry_uuid ?? ''))?.resolution_status).toBe('pending');

    const stats = await dlqStats(db);
    expect(stats.by_status).toMatchObject({ pending: 5, manually_resolved: 2 });
  });

  it('two operators closing the same entry at once: one wins, the other gets the conflict', async () => {
    const [entry] = await getDlqEntriesForTask(db, stale[3]?.taskUuid ?? '');
    const poolA = getTestDb().openPool({ maxConnections: 1 });
    const poolB = getTestDb().openPool({ maxConnections: 1 });
    const results = await Promise.allSettled([
      updateDlqEntry(poolA, entry?.dlq_entry_uuid ?? '', {
        resolution_status: 'permanently_failed',
        resolved_by: 'a',
      }),
      updateDlqEntry(poolB, entry?.dlq_entry_uuid ?? '', {
        resolution_status: 'cancelled',
        resolved_by: 'b',
      }),
    ]);
    const won = results.filter((r): r is PromiseFulfilledResult<DlqEntry> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toMatchObject({ code: 'TASKER_DLQ_ENTRY_RESOLVED' });
    const final = await getDlqEntry(db, entry?.dlq_entry_uuid ?? '');
    expect(final?.resolution_status).toBe(won[0]?.value.resolution_status);
    expect(final?.resolved_by).toBe(won[0]?.value.resolved_by);
  });

  it('a task keeps one pending entry while it goes stale again; once closed, the next staleness opens a new one', async () => {
    const { taskUuid, namespace } = stale[4] ?? { taskUuid: '', namespace: '' };
    const revive = async (): Promise<void> => {
      const only = (await stepsByName(db, taskUuid)).only;
      await applyStepAction(db, taskUuid, only?.workflow_step_uuid ?? '', { action: 'reset_for_retry' });
      expect((await taskRow(db, taskUuid))?.current_state).toBe('steps_in_process');
      // Claimed and never finished: the task goes stale again.
      expect((await claim(db, namespace)).map((s) => s.taskUuid)).toContain(taskUuid);
      await backdate(db, taskUuid, 45);
    };

    await revive();
    expect((await detector.runOnce()).filter((r) => r.task_uuid === taskUuid)).toMatchObject([
      { action: 'moved_to_error' },
    ]);
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    const entries = await getDlqEntriesForTask(db, taskUuid);
    expect(entries.map((e) => e.resolution_status)).toEqual(['pending']);

    await updateDlqEntry(db, entries[0]?.dlq_entry_uuid ?? '', { resolution_status: 'manually_resolved' });
    await revive();
    await detector.runOnce();
    const after = await getDlqEntriesForTask(db, taskUuid);
    expect(after.map((e) => e.resolution_status)).toEqual(['pending', 'manually_resolved']);
    expect(after[0]?.task_snapshot).toMatchObject({
      steps: [{ name: 'only', current_state: 'in_progress', attempts: 1 }],
    });
  });
});
