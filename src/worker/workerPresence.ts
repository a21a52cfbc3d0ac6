import { hostname } from 'node:os';
import type { Queryable } from '../db/database.ts';
import {
  forgetGoneWorkers,
  recordWorkerHeartbeat,
  removeWorker,
  WORKER_HEARTBEAT_INTERVAL_MS,
} from '../db/queries/workerRegistry.ts';
import type { Logger } from '../observability/logger.ts';

/**
 * Keeps the worker's rows in tasker.worker_namespaces fresh, so the API can tell a task that waits for a busy
 * worker from one that waits for a worker nobody runs. A failed heartbeat is logged and tried again at the next
 * interval: presence is advice for people, never a condition for claiming work.
 */
export class WorkerPresence {
  private timer: NodeJS.Timeout | undefined;
  private beat: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Queryable,
    private readonly registration: {
      workerId: string;
      namespaces: readonly string[];
      capacity: number;
      version: string;
    },
    private readonly logger: Logger,
    private readonly intervalMs: number = WORKER_HEARTBEAT_INTERVAL_MS,
  ) {}

  /** Records the first heartbeat before returning, so a task created right after start sees a live worker. */
  async start(): Promise<void> {
    await forgetGoneWorkers(this.db);
    await this.record();
    this.timer = setInterval(() => {
      this.beat = this.record().catch((error: unknown) =>
        this.logger.warn({ err: error }, 'worker heartbeat (tasker.worker_namespaces) failed; retrying'),
      );
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Removes the worker's rows; safe to call twice and when start() was never called. */
  async stop(): Promise<void> {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beat;
    await removeWorker(this.db, this.registration.workerId).catch((error: unknown) =>
      this.logger.warn({ err: error }, 'removing the worker from tasker.worker_namespaces failed'),
    );
  }

  private record(): Promise<void> {
    return recordWorkerHeartbeat(this.db, { ...this.registration, hostname: hostname(), pid: process.pid });
  }
}
