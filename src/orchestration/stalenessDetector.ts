/**
 * The staleness detector (reference §5.3): every `intervalMs` it asks tasker.detect_stale_tasks to move tasks
 * that made no progress past their threshold to `error`, each with one pending DLQ entry. Every orchestrator
 * runs one; they need no leader because the SQL locks each task FOR UPDATE SKIP LOCKED and re-checks it.
 */
import type { TaskerConfig } from '../config/schema.ts';
import type { Database } from '../db/database.ts';
import { detectStaleTasks } from '../db/queries/staleTasks.ts';
import type { StalenessThresholds } from '../db/queries/staleTasks.ts';
import { PeriodicSweep } from '../coordination/periodicSweep.ts';
import { silentLogger } from '../observability/logger.ts';
import type { Logger } from '../observability/logger.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';

export type { StalenessThresholds } from '../db/queries/staleTasks.ts';

export interface StalenessDetectorOptions {
  db: Database;
  thresholds: StalenessThresholds;
  /** Time between runs; the first run comes one interval (plus jitter) after start(). */
  intervalMs: number;
  /** Most tasks moved per run. */
  batchSize: number;
  /** Report stale tasks ('would_move') without changing anything. @defaultValue false */
  dryRun?: boolean;
  /** Recorded on the transitions and in the DLQ entry's detected_by. */
  processorUuid?: string;
  /** @defaultValue a silent logger */
  logger?: Logger;
  /** Counts sweeps and moved tasks (tasker_staleness_*). @defaultValue none */
  metrics?: TaskerMetrics;
}

export interface StaleTaskReport {
  task_uuid: string;
  namespace: string;
  name: string;
  state: string;
  minutes_in_state: number;
  threshold_minutes: number;
  reason: 'staleness_timeout';
  action: 'moved_to_error' | 'would_move' | 'lost_race';
}

/**
 * The detector's options from `[orchestration.staleness]`; the max lifetime is the seed's
 * `[orchestration] task_timeout_seconds` (one setting, not two that could disagree).
 */
export function stalenessDetectorSettings(
  orchestration: TaskerConfig['orchestration'],
): Pick<StalenessDetectorOptions, 'thresholds' | 'intervalMs' | 'batchSize' | 'dryRun'> {
  const settings = orchestration.staleness;
  return {
    thresholds: {
      waitingForDependenciesMinutes: settings.waiting_for_dependencies_minutes,
      waitingForRetryMinutes: settings.waiting_for_retry_minutes,
      stepsInProcessMinutes: settings.steps_in_process_minutes,
      taskMaxLifetimeMinutes: Math.ceil(orchestration.task_timeout_seconds / 60),
    },
    intervalMs: settings.detection_interval_seconds * 1000,
    batchSize: settings.batch_size,
    dryRun: settings.dry_run,
  };
}

export class StalenessDetector {
  readonly #options: StalenessDetectorOptions;
  readonly #logger: Logger;
  readonly #periodic: PeriodicSweep<StaleTaskReport[]>;

  constructor(options: StalenessDetectorOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1)
      throw new RangeError('StalenessDetector: batchSize must be a positive integer');
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'staleness_detector' });
    this.#periodic = new PeriodicSweep({
      name: 'staleness detection',
      intervalMs: options.intervalMs,
      sweep: () => this.#sweep(),
      logger: this.#logger,
    });
  }

  /** Schedules runs every interval. Safe to call twice. */
  start(): void {
    this.#periodic.start();
  }

  /** No further runs; waits for a run in progress to finish. Safe to call twice. */
  stop(): Promise<void> {
    return this.#periodic.stop();
  }

  /**
   * One sweep now. A call while a sweep is running joins it instead of starting another.
   * @throws whatever the database throws (the scheduled runs log it and try again next interval)
   */
  runOnce(): Promise<StaleTaskReport[]> {
    return this.#periodic.runOnce();
  }

  async #sweep(): Promise<StaleTaskReport[]> {
    const { db, thresholds, batchSize } = this.#options;
    const dryRun = this.#options.dryRun ?? false;
    const { metrics } = this.#options;
    let rows: StaleTaskReport[];
    try {
      rows = await detectStaleTasks(db, {
        thresholds,
        batchSize,
        dryRun,
        processorUuid: this.#options.processorUuid ?? null,
      });
    } catch (error) {
      metrics?.stalenessRuns.inc({ outcome: 'failure' });
      throw error;
    }
    metrics?.stalenessRuns.inc({ outcome: 'success' });
    const moved = rows.filter((row) => row.action === 'moved_to_error').length;
    if (moved > 0) metrics?.stalenessTasksMoved.inc(moved);
    for (const row of rows) {
      const fields = {
        task_uuid: row.task_uuid,
        reason: row.reason,
        namespace: row.namespace,
        name: row.name,
        state: row.state,
        minutes_in_state: row.minutes_in_state,
        threshold_minutes: row.threshold_minutes,
      };
      if (row.action === 'moved_to_error') {
        this.#logger.warn(fields, 'stale task moved to error and dead-lettered');
      } else if (row.action === 'would_move') {
        this.#logger.info(fields, 'stale task found (dry run: left as it is)');
      } else {
        // Another orchestrator's detector has it, or it moved on meanwhile: a normal outcome.
        this.#logger.debug(fields, 'stale task taken care of elsewhere');
      }
    }
    return rows;
  }
}
