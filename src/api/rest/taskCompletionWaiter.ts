import type { Queryable } from '../../db/database.ts';
import { TERMINAL_TASK_STATES } from '../../domain/state/taskStates.ts';
import type { NotificationListener } from '../../messaging/pgmq/notificationListener.ts';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';
import { ApiError } from './apiError.ts';

/**
 * Sent when a task reaches a terminal state, `<task_uuid>:<state>`: the trigger on tasker.tasks in
 * migrations/0003_templates_and_tasks.sql, tasker._notify_task_finished in src/db/sql/queue_notifications.sql.
 */
const TASK_FINISHED_CHANNEL = 'tasker_task_finished';

/** Without any notification, a waiter re-checks the database this often (a lost NOTIFY costs this much). */
const RECHECK_MS = 1_000;

/**
 * Lets a request wait until a task is finished (`GET /v1/tasks/{uuid}?wait=N`). One LISTEN for the whole
 * process; a notification, a listener reconnect (notifications may have been missed) or the periodic
 * re-check wakes the waiters, which then read the task again. The notification is only a hint: the
 * database decides whether the task is finished.
 */
export interface TaskCompletionWaiterOptions {
  /**
   * How often the waited tasks are checked without a notification. With `db`, one query checks all of them;
   * without, each waiter re-reads its task. @defaultValue 1000 with a listener, 100 without
   */
  recheckMs?: number;
  /** Where the batched check looks (tasker.tasks). @defaultValue none: each waiter re-reads on its own */
  db?: Queryable;
  /** Most waits at once; one more is refused with 503 TASKER_SERVICE_OVERLOADED. @defaultValue no limit */
  maxWaiters?: number;
  /** Most waiters reading their task at once, so waiting never takes the pool from task creation. @defaultValue 4 */
  maxConcurrentReads?: number;
}

/**
 * Lets a request wait until a task is finished (`GET /v1/tasks/{uuid}?wait=N`). One LISTEN for the whole
 * process; a notification, a listener reconnect (notifications may have been missed) or the periodic check
 * wakes the waiters, which then read the task again. The notification is only a hint: the database decides
 * whether the task is finished. The periodic check is one query for every waited task (with `db`), so a
 * thousand waiters cost one query per interval, and their reads share a few connections.
 */
export class TaskCompletionWaiter {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly listener: NotificationListener | null;
  private readonly logger: Logger;
  private readonly recheckMs: number;
  private readonly db: Queryable | undefined;
  private readonly maxWaiters: number;
  private readonly reads: ReadSlots;
  private sweepTimer: NodeJS.Timeout | undefined;
  private count = 0;
  private unsubscribe: (() => Promise<void>) | undefined;
  private offConnected: (() => void) | undefined;

  constructor(
    listener: NotificationListener | null,
    logger: Logger = silentLogger,
    options: TaskCompletionWaiterOptions = {},
  ) {
    this.listener = listener;
    this.logger = logger;
    this.recheckMs = options.recheckMs ?? (listener === null ? 100 : RECHECK_MS);
    this.db = options.db;
    this.maxWaiters = options.maxWaiters ?? Number.POSITIVE_INFINITY;
    this.reads = new ReadSlots(options.maxConcurrentReads ?? 4);
  }

  async start(): Promise<void> {
    if (this.listener === null) return;
    this.unsubscribe = await this.listener.subscribe(TASK_FINISHED_CHANNEL, (payload) => {
      const taskUuid = payload.split(':', 1)[0] ?? '';
      this.wake(taskUuid);
    });
    this.offConnected = this.listener.onConnected(({ reconnect }) => {
      if (reconnect) for (const taskUuid of [...this.waiters.keys()]) this.wake(taskUuid);
    });
    await this.listener.start();
  }

  async stop(): Promise<void> {
    this.offConnected?.();
    await this.unsubscribe?.().catch((error: unknown) =>
      this.logger.debug({ err: error }, 'unlisten of task completions failed'),
    );
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const taskUuid of [...this.waiters.keys()]) this.wake(taskUuid);
  }

  /** Number of requests waiting now (a gauge for operators). */
  get waiting(): number {
    return this.count;
  }

  /**
   * Re-runs `read` until `isDone` says so or `timeoutMs` passes, waking on the task's notification or the
   * periodic check, and returns the last read. `signal` (the client went away) ends the wait early.
   * @throws ApiError 503 TASKER_SERVICE_OVERLOADED (Retry-After: 1) when `maxWaiters` are waiting already
   */
  async waitFor<T>(
    taskUuid: string,
    read: () => Promise<T>,
    isDone: (value: T) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
    options: { justCreated?: boolean } = {},
  ): Promise<T> {
    if (this.count >= this.maxWaiters) {
      throw new ApiError(
        503,
        'TASKER_SERVICE_OVERLOADED',
        `${this.maxWaiters} requests are waiting for tasks already ([orchestration.web] max_waiting_requests); ` +
          'retry after 1 s, or ask without wait and poll',
        {
          headers: { 'retry-after': '1' },
          details: { retry_after_seconds: 1, max_waiting_requests: this.maxWaiters },
        },
      );
    }
    this.count += 1;
    this.scheduleSweep();
    try {
      return await this.waitLoop(taskUuid, () => this.reads.run(read), isDone, timeoutMs, signal, options);
    } finally {
      this.count -= 1;
    }
  }

  private async waitLoop<T>(
    taskUuid: string,
    read: () => Promise<T>,
    isDone: (value: T) => boolean,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    options: { justCreated?: boolean },
  ): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    if (options.justCreated === true) {
      // A task created a moment ago cannot be finished yet (its first step has not even been claimed): skip
      // the first read, which would only compete with the worker for the database. Should it somehow have
      // finished before this line, the periodic re-check still answers.
      await this.arm(taskUuid).wait(Math.min(timeoutMs, this.recheckMs), signal);
    }
    for (;;) {
      // Armed before the read, so a notification landing between the read and the wait is not missed.
      const woken = this.arm(taskUuid);
      let value: T;
      try {
        value = await read();
      } catch (error) {
        woken.cancel();
        throw error;
      }
      const left = deadline - performance.now();
      if (isDone(value) || left <= 0 || signal?.aborted === true) {
        woken.cancel();
        return value;
      }
      // With the batched check, a waiter sleeps until woken (or its deadline); without, it re-reads itself.
      await woken.wait(this.db === undefined ? Math.min(left, this.recheckMs) : left, signal);
    }
  }

  /** While anyone waits, one query per interval finds which waited tasks are finished (or gone) and wakes them. */
  private scheduleSweep(): void {
    if (this.db === undefined || this.sweepTimer !== undefined) return;
    this.sweepTimer = setTimeout(() => void this.sweep(), this.recheckMs);
    this.sweepTimer.unref();
  }

  private async sweep(): Promise<void> {
    const db = this.db;
    const uuids = [...this.waiters.keys()];
    try {
      if (db !== undefined && uuids.length > 0) {
        const { rows } = await db.query<{ task_uuid: string }>(
          `SELECT w.id::text AS task_uuid FROM unnest($1::uuid[]) AS w(id)
           LEFT JOIN tasker.tasks t ON t.task_uuid = w.id
           WHERE t.task_uuid IS NULL OR t.current_state = ANY($2::text[])`,
          [uuids, [...TERMINAL_TASK_STATES]],
          { name: 'tasker_api_finished_waited_tasks' },
        );
        for (const row of rows) this.wake(row.task_uuid);
      }
    } catch (error) {
      this.logger.debug({ err: error }, 'checking waited tasks failed; retrying at the next interval');
    } finally {
      this.sweepTimer = undefined;
      if (this.count > 0) this.scheduleSweep();
    }
  }

  private arm(taskUuid: string): { wait(ms: number, signal?: AbortSignal): Promise<void>; cancel(): void } {
    let resolve: () => void = () => undefined;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    let set = this.waiters.get(taskUuid);
    if (set === undefined) {
      set = new Set();
      this.waiters.set(taskUuid, set);
    }
    set.add(resolve);
    const cancel = (): void => {
      const current = this.waiters.get(taskUuid);
      current?.delete(resolve);
      if (current?.size === 0) this.waiters.delete(taskUuid);
      resolve();
    };
    return {
      cancel,
      wait: async (ms, signal) => {
        const timer = setTimeout(cancel, ms);
        const onAbort = (): void => cancel();
        signal?.addEventListener('abort', onAbort, { once: true });
        await promise;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        cancel();
      },
    };
  }

  private wake(taskUuid: string): void {
    const set = this.waiters.get(taskUuid);
    if (set === undefined) return;
    this.waiters.delete(taskUuid);
    for (const resolve of set) resolve();
  }
}

/** At most `limit` reads at once; the rest queue in order. */
class ReadSlots {
  private active = 0;
  private readonly queued: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(read: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queued.push(resolve));
    this.active += 1;
    try {
      return await read();
    } finally {
      this.active -= 1;
      this.queued.shift()?.();
    }
  }
}
