import type { ListenConnection } from '../../src/db/database.ts';
import type { PostgresDatabase } from '../../src/db/postgresDatabase.ts';

/**
 * Sent when a task reaches a terminal state, `<task_uuid>:<state>`: the trigger on tasker.tasks in
 * migrations/0003_templates_and_tasks.sql, tasker._notify_task_finished in src/db/sql/queue_notifications.sql.
 */
const CHANNEL = 'tasker_task_finished';

/**
 * How the bench learns that a task finished: the same NOTIFY that wakes `GET /v1/tasks/{uuid}?wait=N`, on a
 * LISTEN connection of its own. Unlike a tight polling loop it adds no queries that compete with the engine
 * for the machine's two cores. Notifications that arrive before anyone waits are kept, so a task that
 * finishes before createTask() has returned is still seen.
 */
export class TaskFinishedFeed {
  private connection: ListenConnection | null = null;
  private readonly finished = new Map<string, string>();
  private readonly waiters = new Map<string, (state: string) => void>();
  /** Notifications since the last clear(), and who waits for that count to reach a number. */
  private count = 0;
  private countWaiter: { target: number; resolve: () => void } | null = null;

  constructor(private readonly db: PostgresDatabase) {}

  async start(): Promise<void> {
    this.connection = await this.db.openListenConnection({
      onNotification: (_channel, payload) => {
        const [taskUuid = '', state = ''] = payload.split(':');
        this.count += 1;
        if (this.countWaiter !== null && this.count >= this.countWaiter.target) {
          this.countWaiter.resolve();
          this.countWaiter = null;
        }
        const waiter = this.waiters.get(taskUuid);
        if (waiter === undefined) this.finished.set(taskUuid, state);
        else {
          this.waiters.delete(taskUuid);
          waiter(state);
        }
      },
      onLost: (error) => process.stderr.write(`task-finished feed lost: ${error.message}\n`),
    });
    await this.connection.listen(CHANNEL);
  }

  /** Resolves with the task's terminal state when its notification arrives; rejects after `timeoutMs`. */
  wait(taskUuid: string, timeoutMs: number): Promise<string> {
    const seen = this.finished.get(taskUuid);
    if (seen !== undefined) {
      this.finished.delete(taskUuid);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(taskUuid);
        reject(new Error(`no tasker_task_finished notification for ${taskUuid} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(taskUuid, (state) => {
        clearTimeout(timer);
        resolve(state);
      });
    });
  }

  /**
   * Resolves true once `target` tasks have finished since the last clear(), or false after `timeoutMs` (the
   * caller then asks the database: a notification is a hint, and one could be lost with its connection).
   */
  waitForCount(target: number, timeoutMs: number): Promise<boolean> {
    if (this.count >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.countWaiter = null;
        resolve(false);
      }, timeoutMs);
      this.countWaiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
    });
  }

  /** Forgets notifications nobody waited for and restarts the count (bulk scenarios, warm-up). */
  clear(): void {
    this.finished.clear();
    this.count = 0;
  }

  async stop(): Promise<void> {
    await this.connection?.close();
    this.connection = null;
  }
}
