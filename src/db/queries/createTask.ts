import { CommitBatcher } from '../commitBatcher.ts';
import type { Queryable } from '../database.ts';
import { isConnectionError } from '../sqlState.ts';
import { poolIsBusy, signalSoon } from './completeStep.ts';

export interface NewTaskRow {
  task_uuid: string;
  named_task_uuid: string;
  namespace_name: string;
  context: unknown;
  identity_hash: string;
  initiator: string | null;
  source_system: string | null;
  reason: string | null;
  tags: string[];
  priority: number;
  correlation_id: string;
  parent_correlation_id: string | null;
  requested_at: string | null;
  processor_uuid: string | null;
}

export interface NewStepRow {
  workflow_step_uuid: string;
  name: string;
  handler_callable: string;
  inputs: Record<string, unknown>;
  retryable: boolean;
  max_attempts: number;
  backoff_strategy: string;
  backoff_base_ms: number;
  max_backoff_ms: number;
  timeout_seconds: number | null;
}

export interface CreatedTask {
  taskUuid: string;
  state: string;
  enqueuedSteps: number;
}

/** A pool (or the embedded database), as opposed to one transaction's client: it can run a later transaction. */
function isDatabase(db: Queryable): boolean {
  return typeof (db as { transaction?: unknown }).transaction === 'function';
}

/**
 * One commit: the task, its steps, edges and transitions, and the root steps enqueued (tasker.create_tasks,
 * the one creation entry point, with a batch of one). `requestMsgId` archives the orchestration_task_requests
 * message in the same commit. A duplicate identity raises unique_violation on constraint tasks_identity_hash_key.
 *
 * On a pool, the workers' wake-up signal goes out right after that commit in a transaction of its own
 * (p_notify false, then signalSoon, not awaited): a commit that notifies holds PostgreSQL's database-wide
 * notify lock through its WAL flush, which made concurrent creations run one at a time, and signalSoon merges
 * the signals of concurrent creations. createTask returns once the task is committed, before any worker has
 * been told. Inside a caller's transaction, the signal is part of that transaction (p_notify true) and goes
 * out when it commits; so it does when nothing else of this process is using the pool (one creation at a
 * time), where the separate signal would only add a round trip.
 */
export async function insertTask(
  db: Queryable,
  task: NewTaskRow,
  steps: NewStepRow[],
  edges: { from: string; to: string }[],
  requestMsgId?: string,
): Promise<CreatedTask> {
  const item: CreateItem = { task, steps, edges, request_msg_id: requestMsgId ?? null };
  // Inside a caller's transaction the signal must ride in it; alone on the pool, riding in the commit saves
  // the signal's own round trip and holds up nobody (the same choice as the worker's completing commits).
  if (!isDatabase(db) || !poolIsBusy(db)) {
    const [row] = await createTasks(db, [item], true);
    if (row === undefined) throw new Error('tasker.create_tasks returned no row');
    return { taskUuid: row.task_uuid, state: row.current_state, enqueuedSteps: row.enqueued_steps };
  }
  return batchedCreate(db, item);
}

interface CreateItem {
  task: NewTaskRow;
  steps: NewStepRow[];
  edges: { from: string; to: string }[];
  request_msg_id: string | null;
}

interface CreatedRow {
  task_uuid: string;
  current_state: string;
  enqueued_steps: number;
  queue: string;
  msg_ids: (string | number)[] | null;
}

/**
 * tasker.create_tasks: the tasks of `items` in the caller's commit, in order, one row each. With `notify`, the
 * commit itself wakes the workers; without, the rows say which messages to signal after it.
 */
async function createTasks(
  db: Queryable,
  items: readonly CreateItem[],
  notify: boolean,
): Promise<CreatedRow[]> {
  const { rows } = await db.query<CreatedRow>(
    'SELECT task_uuid, current_state, enqueued_steps, queue, msg_ids FROM tasker.create_tasks($1::jsonb, $2)',
    [JSON.stringify(items), notify],
    { name: 'tasker_create_tasks' },
  );
  return rows;
}

interface PendingCreate {
  item: CreateItem;
  resolve: (created: CreatedTask) => void;
  reject: (error: unknown) => void;
}

/** Most tasks created in one commit. */
const MAX_CREATE_BATCH = 50;
/**
 * Creation commits on their way at once per pool: while they are, newly submitted tasks gather and go
 * together in the next one.
 */
const MAX_CREATE_BATCHES_IN_FLIGHT = 2;

const createBatchers = new WeakMap<Queryable, CommitBatcher<PendingCreate>>();

/**
 * Concurrent creations on a busy pool share commits (CommitBatcher: those of one turn of the event loop go
 * together, up to MAX_CREATE_BATCH per commit, MAX_CREATE_BATCHES_IN_FLIGHT commits at once). Each caller
 * still returns only once its task is committed. A failing batch (a duplicate identity, a deadlock between
 * two batches on the identity index) is retried task by task, so each request gets its own outcome.
 */
function batchedCreate(db: Queryable, item: CreateItem): Promise<CreatedTask> {
  let batcher = createBatchers.get(db);
  if (batcher === undefined) {
    batcher = new CommitBatcher<PendingCreate>({
      maxBatch: MAX_CREATE_BATCH,
      maxInFlight: MAX_CREATE_BATCHES_IN_FLIGHT,
      commit: (batch) => commitCreates(db, batch),
    });
    createBatchers.set(db, batcher);
  }
  const current = batcher;
  return new Promise<CreatedTask>((resolve, reject) => current.add({ item, resolve, reject }));
}

/** One batch of creations in one commit; a single one through createOne. */
async function commitCreates(db: Queryable, batch: PendingCreate[]): Promise<void> {
  if (batch.length === 1) {
    await createOne(db, batch[0] as PendingCreate);
    return;
  }
  let rows: CreatedRow[];
  try {
    rows = await createTasks(
      db,
      batch.map((pending) => pending.item),
      false,
    );
  } catch (error) {
    // A lost connection leaves it unknown whether the commit happened: every caller gets that error, as a
    // single creation's caller would. Anything else rolled the batch back: each task on its own.
    if (isConnectionError(error)) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const pending of batch) await createOne(db, pending);
    return;
  }
  const msgIds = new Map<string, string[]>();
  batch.forEach((pending, i) => {
    const row = rows[i];
    if (row === undefined) {
      pending.reject(new Error('tasker.create_tasks returned fewer rows than tasks'));
      return;
    }
    if (row.msg_ids !== null && row.msg_ids.length > 0) {
      msgIds.set(row.queue, [...(msgIds.get(row.queue) ?? []), ...row.msg_ids.map(String)]);
    }
    pending.resolve({
      taskUuid: row.task_uuid,
      state: row.current_state,
      enqueuedSteps: row.enqueued_steps,
    });
  });
  for (const [queue, ids] of msgIds) void signalSoon(db, { queue, msgIds: ids });
}

/** One task in its own commit, its signal sent after the commit. */
async function createOne(db: Queryable, pending: PendingCreate): Promise<void> {
  try {
    const [row] = await createTasks(db, [pending.item], false);
    if (row === undefined) throw new Error('tasker.create_tasks returned no row');
    if (row.msg_ids !== null && row.msg_ids.length > 0) {
      // Not awaited: the task is committed, and the caller need not wait for a hint. A lost signal only means
      // a worker finds the steps on its next poll.
      void signalSoon(db, { queue: row.queue, msgIds: row.msg_ids.map(String) });
    }
    pending.resolve({ taskUuid: row.task_uuid, state: row.current_state, enqueuedSteps: row.enqueued_steps });
  } catch (error) {
    pending.reject(error);
  }
}
