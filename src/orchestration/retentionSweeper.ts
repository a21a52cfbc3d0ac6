/**
 * Retention (src/db/sql/retention.sql): every `intervalMs` the sweeper deletes tasks that finished more than
 * `finishedTaskHours` ago, with their steps and history, and queue archive rows older than `queueArchiveHours`.
 * Running tasks, tasks with a pending DLQ entry and live queue messages are never deleted. Every orchestrator
 * runs one; they need no leader because the SQL locks the tasks it deletes FOR UPDATE SKIP LOCKED.
 */
import type { TaskerConfig } from '../config/schema.ts';
import { PeriodicSweep } from '../coordination/periodicSweep.ts';
import type { Queryable } from '../db/database.ts';
import { purgeFinishedTasks, purgeQueueArchives } from '../db/queries/retention.ts';
import { silentLogger } from '../observability/logger.ts';
import type { Logger } from '../observability/logger.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';

export interface RetentionSweeperOptions {
  db: Queryable;
  /** Hours a finished task is kept (fractions allowed). */
  finishedTaskHours: number;
  /** Hours an archived queue message is kept (fractions allowed). */
  queueArchiveHours: number;
  /** Time between sweeps; the first comes one interval (plus jitter) after start(). */
  intervalMs: number;
  /** Most tasks (and, per queue, archive rows) deleted in one commit. */
  batchSize: number;
  /** @defaultValue a silent logger */
  logger?: Logger;
  /** Counts sweeps and deleted rows (tasker_retention_*). @defaultValue none */
  metrics?: TaskerMetrics;
}

export interface RetentionReport {
  /** Finished tasks deleted (with their steps, edges, transitions, audit rows and resolved DLQ entries). */
  tasks: number;
  /** Archive rows deleted, per queue. */
  archivedMessages: Record<string, number>;
}

/** The sweeper's options from `[orchestration.retention]`. */
export function retentionSweeperSettings(
  orchestration: TaskerConfig['orchestration'],
): Pick<RetentionSweeperOptions, 'finishedTaskHours' | 'queueArchiveHours' | 'intervalMs' | 'batchSize'> {
  const settings = orchestration.retention;
  return {
    finishedTaskHours: settings.finished_task_hours,
    queueArchiveHours: settings.queue_archive_hours,
    intervalMs: settings.sweep_interval_seconds * 1000,
    batchSize: settings.batch_size,
  };
}

export class RetentionSweeper {
  readonly #options: RetentionSweeperOptions;
  readonly #logger: Logger;
  readonly #periodic: PeriodicSweep<RetentionReport>;

  constructor(options: RetentionSweeperOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1)
      throw new RangeError('RetentionSweeper: batchSize must be a positive integer');
    if (!(options.finishedTaskHours > 0) || !(options.queueArchiveHours > 0))
      throw new RangeError('RetentionSweeper: retention hours must be positive');
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'retention' });
    this.#periodic = new PeriodicSweep({
      name: 'retention sweep',
      intervalMs: options.intervalMs,
      sweep: (stopped) => this.#sweep(stopped),
      logger: this.#logger,
    });
  }

  /** Schedules sweeps every interval. Safe to call twice. */
  start(): void {
    this.#periodic.start();
  }

  /** No further sweeps; a sweep in progress ends after its current batch. Safe to call twice. */
  stop(): Promise<void> {
    return this.#periodic.stop();
  }

  /**
   * One sweep now. A call while a sweep is running joins it instead of starting another.
   * @throws whatever the database throws (the scheduled sweeps log it and try again next interval)
   */
  runOnce(): Promise<RetentionReport> {
    return this.#periodic.runOnce();
  }

  /**
   * Batches of one commit each, until a batch comes back short (nothing more is due), the sweeper stops, or the
   * sweep has run for one interval. A backlog (retention switched on over a large database) is worked off in
   * commits short enough not to hold anything up, at most half of the time (a sweep of one interval, then an
   * interval's pause: sweeps never overlap, the next is scheduled after this one ends).
   */
  async #sweep(stopped: AbortSignal): Promise<RetentionReport> {
    const { db, batchSize, metrics } = this.#options;
    const report: RetentionReport = { tasks: 0, archivedMessages: {} };
    const deadline = performance.now() + this.#options.intervalMs;
    const goOn = (): boolean => !stopped.aborted && performance.now() < deadline;
    try {
      while (goOn()) {
        const deleted = await purgeFinishedTasks(db, this.#options.finishedTaskHours * 3600, batchSize);
        report.tasks += deleted;
        if (deleted < batchSize) break;
      }
      while (goOn()) {
        const deleted = await purgeQueueArchives(db, this.#options.queueArchiveHours * 3600, batchSize);
        for (const [queue, count] of deleted) {
          report.archivedMessages[queue] = (report.archivedMessages[queue] ?? 0) + count;
        }
        // Another batch only while some queue's archive filled its batch.
        if (![...deleted.values()].some((count) => count >= batchSize)) break;
      }
    } catch (error) {
      metrics?.retentionRuns.inc({ outcome: 'failure' });
      this.#count(report);
      throw error;
    }
    metrics?.retentionRuns.inc({ outcome: 'success' });
    this.#count(report);
    if (report.tasks > 0 || archivedTotal(report) > 0) {
      this.#logger.info(
        { tasks: report.tasks, archived_messages: report.archivedMessages },
        'retention: deleted finished tasks and archived messages past their retention',
      );
    }
    return report;
  }

  /** Deleted rows count even when a later batch of the sweep failed: their commits happened. */
  #count(report: RetentionReport): void {
    const { metrics } = this.#options;
    if (metrics === undefined) return;
    if (report.tasks > 0) metrics.retentionDeleted.inc({ kind: 'task' }, report.tasks);
    const archived = archivedTotal(report);
    if (archived > 0) metrics.retentionDeleted.inc({ kind: 'archived_message' }, archived);
  }
}

function archivedTotal(report: RetentionReport): number {
  return Object.values(report.archivedMessages).reduce((sum, count) => sum + count, 0);
}
