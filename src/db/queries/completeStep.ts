import type { Database, Queryable } from '../database.ts';
import { toClaimedStep } from './claimSteps.ts';
import type { ClaimedStep, ClaimRow } from './claimSteps.ts';

export interface StepFailure {
  message: string;
  error_type: string;
  retryable: boolean;
  retry_after_ms?: number;
  code?: string;
  /** Stack frames of an unexpected error (not a PermanentError or RetryableError), bounded by the worker. */
  backtrace?: string[];
}

export type CompleteOutcome = 'stored' | 'stale' | 'complete' | 'retry' | 'error' | 'noop';

export interface StepCompletion {
  taskUuid: string;
  stepUuid: string;
  attempt: number;
  success: boolean;
  payload: unknown;
  workerId: string;
  executionMs: number;
  /** Apply the result in this commit (next steps enqueued, task finalized) instead of signalling orchestration. */
  inline: boolean;
}

/** A wake-up signal to send once the transaction that sent these messages has committed. */
export interface PendingSignal {
  queue: string;
  msgIds: string[];
}

/**
 * Sends a wake-up signal in a transaction of its own (tasker.signal_sent): such a transaction has nothing to
 * make durable, so it commits asynchronously and holds PostgreSQL's notify lock for microseconds instead of
 * through a WAL flush (every notifying commit in a database runs one at a time). The signal is a hint:
 * polling finds the messages if it is lost.
 */
async function signalSent(db: Queryable, signal: PendingSignal): Promise<void> {
  await db.query('SELECT tasker.signal_sent($1, $2::bigint[])', [signal.queue, signal.msgIds], {
    name: 'tasker_signal_sent',
  });
}

/**
 * Whether other queries of this process are running on the pool (or waiting for it). When none are, a commit
 * that notifies has nobody here to hold up, and notifying in it saves the signal's own round trip; when some
 * are, concurrent notifying commits would run one at a time, so the signal goes after the commit instead.
 */
export function poolIsBusy(db: Queryable): boolean {
  const stats = (db as Partial<Database>).poolStats?.();
  return stats === undefined || stats.total - stats.idle > 0 || stats.waiting > 0;
}

interface QueueSignalState {
  /** A signal transaction is on its way. */
  sending: boolean;
  /** Messages committed after that signal started: another signal must follow it. */
  next: PendingSignal | null;
  done: Promise<void>;
}

const signalStates = new WeakMap<Queryable, Map<string, QueueSignalState>>();

/**
 * signalSent for callers that send many signals to the same queue at once (concurrent task creations, a
 * worker's result batches): at most one signal transaction per queue and pool is on its way; signals
 * requested meanwhile are merged into one that starts when it finishes. Each caller's messages were committed
 * before it asked, so the signal that starts after that still wakes consumers for them. Resolves when a
 * signal that started after this call has been sent (or failed: it is a hint, polling finds the messages).
 */
export function signalSoon(db: Queryable, signal: PendingSignal): Promise<void> {
  let states = signalStates.get(db);
  if (states === undefined) {
    states = new Map();
    signalStates.set(db, states);
  }
  let state = states.get(signal.queue);
  if (state === undefined) {
    state = { sending: false, next: null, done: Promise.resolve() };
    states.set(signal.queue, state);
  }
  if (state.sending) {
    state.next = {
      queue: signal.queue,
      msgIds: [...(state.next?.msgIds ?? []), ...signal.msgIds].slice(-100),
    };
    return state.done;
  }
  const current = state;
  current.sending = true;
  current.done = (async () => {
    let pending: PendingSignal | null = signal;
    while (pending !== null) {
      current.next = null;
      await signalSent(db, pending).catch(() => undefined);
      pending = current.next;
    }
    current.sending = false;
  })();
  return current.done;
}

/** One worker result for completeManyAndClaim (the worker and the mode are per batch). */
export type BatchedCompletion = Omit<StepCompletion, 'workerId' | 'inline'>;

interface CompleteManyRow extends Partial<ClaimRow> {
  outcomes: Record<string, CompleteOutcome> | null;
  notify: Record<string, (string | number)[]> | null;
}

/**
 * The one way a step result is stored: one or more results of one worker in one round trip and one (durable)
 * commit (tasker.complete_many_and_claim). Only the worker still holding the claim (`attempt` matches) can
 * store; anything else is 'stale' and changes nothing. Each result is stored (and applied, with `inline`:
 * next steps enqueued, task finalized; otherwise signalled on orchestration_step_results) in task order, the
 * children they made ready are started for this worker, then (with `refill`) the rest of `limit` is claimed
 * from the queue. A chain of steps then costs one commit per step and no wake-up in between.
 * `outcomes` maps step uuids to what storing did; `signals` are the wake-ups to send with signalSent() once
 * this has committed (none when `deferSignal` is false: then the commit sent them).
 */
export async function completeManyAndClaim(
  db: Queryable,
  results: readonly BatchedCompletion[],
  options: {
    workerId: string;
    inline: boolean;
    namespace: string;
    leaseSeconds: number;
    limit: number;
    deferSignal?: boolean;
    /**
     * Read the queue for the room the children of these results leave. false when the worker knows of no
     * visible work it has not taken (see Worker.backlog). @defaultValue true
     */
    refill?: boolean;
  },
): Promise<{ outcomes: Map<string, CompleteOutcome>; claimed: ClaimedStep[]; signals: PendingSignal[] }> {
  const payload = results.map((r) => ({
    task_uuid: r.taskUuid,
    step_uuid: r.stepUuid,
    attempt: r.attempt,
    success: r.success,
    payload: r.payload ?? null,
    execution_ms: Math.round(r.executionMs),
  }));
  const { rows } = await db.query<CompleteManyRow>(
    'SELECT * FROM tasker.complete_many_and_claim($1::jsonb, $2, $3, $4, $5, $6, $7, $8)',
    [
      JSON.stringify(payload),
      options.workerId,
      options.inline,
      options.namespace,
      options.leaseSeconds,
      Math.max(0, options.limit),
      options.deferSignal !== true,
      options.refill !== false,
    ],
    { name: 'tasker_complete_many_and_claim_v2' },
  );
  const outcomes = new Map<string, CompleteOutcome>();
  const claimed: ClaimedStep[] = [];
  const signals: PendingSignal[] = [];
  for (const row of rows) {
    if (row.step_uuid != null) claimed.push(toClaimedStep(row as ClaimRow));
    for (const [stepUuid, outcome] of Object.entries(row.outcomes ?? {})) outcomes.set(stepUuid, outcome);
    for (const [queue, ids] of Object.entries(row.notify ?? {})) {
      if (ids.length > 0) signals.push({ queue, msgIds: ids.map(String) });
    }
  }
  return { outcomes, claimed, signals };
}
