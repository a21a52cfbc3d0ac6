import type { NotificationListener } from '../../messaging/pgmq/notificationListener.ts';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';

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
export class TaskCompletionWaiter {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly listener: NotificationListener | null;
  private readonly logger: Logger;
  private readonly recheckMs: number;
  private unsubscribe: (() => Promise<void>) | undefined;
  private offConnected: (() => void) | undefined;

  /**
   * Without a listener (PollingOnly: no LISTEN at all) waiters re-read the task every `recheckMs`.
   * @param options.recheckMs @defaultValue 1000 with a listener, 100 without
   */
  constructor(
    listener: NotificationListener | null,
    logger: Logger = silentLogger,
    options: { recheckMs?: number } = {},
  ) {
    this.listener = listener;
    this.logger = logger;
    this.recheckMs = options.recheckMs ?? (listener === null ? 100 : RECHECK_MS);
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
    for (const taskUuid of [...this.waiters.keys()]) this.wake(taskUuid);
  }

  /** Number of requests waiting now (a gauge for operators). */
  get waiting(): number {
    let count = 0;
    for (const set of this.waiters.values()) count += set.size;
    return count;
  }

  /**
   * Re-runs `read` until `isDone` says so or `timeoutMs` passes, waking on the task's notification, and
   * returns the last read. `signal` (the client went away) ends the wait early.
   */
  async waitFor<T>(
    taskUuid: string,
    read: () => Promise<T>,
    isDone: (value: T) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
    options: { justCreated?: boolean } = {},
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
      await woken.wait(Math.min(left, this.recheckMs), signal);
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
