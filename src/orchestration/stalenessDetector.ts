/**
 * The staleness detector (reference §5.3): every `intervalMs` it asks tasker.detect_stale_tasks to move tasks
 * that made no progress past their threshold to `error`, each with one pending DLQ entry. Every orchestrator
 * runs one; they need no leader because the SQL locks each task FOR UPDATE SKIP LOCKED and re-checks it.
 */
import type { TaskerConfig } from '../config/schema.ts';
import type { Database } from '../db/database.ts';
import { detectStaleTasks } from '../db/queries/staleTasks.ts';
import type { StalenessThresholds } from '../db/queries/staleTasks.ts';
import { isTransientDatabaseError } from '../db/sqlState.ts';
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

/** Runs spread over up to 10% of the interval (at most 30 s), so orchestrators started together do not sweep together. */
const JITTER_FRACTION = 0.1;
const MAX_JITTER_MS = 30_000;

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
  #started = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<StaleTaskReport[]> | undefined;

  constructor(options: StalenessDetectorOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError('StalenessDetector: intervalMs must be positive');
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1)
      throw new RangeError('StalenessDetector: batchSize must be a positive integer');
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'staleness_detector' });
  }

  /** Schedules runs every interval. Safe to call twice. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule();
  }

  /** No further runs; waits for a run in progress to finish. Safe to call twice. */
  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /**
   * One sweep now. A call while a sweep is running joins it instead of starting another.
   * @throws whatever the database throws (the scheduled runs log it and try again next interval)
   */
  runOnce(): Promise<StaleTaskReport[]> {
    if (this.#running !== undefined) return this.#running;
    const run = this.#sweep().finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  #schedule(): void {
    if (!this.#started) return;
    const { intervalMs } = this.#options;
    const jitter = Math.random() * Math.min(intervalMs * JITTER_FRACTION, MAX_JITTER_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, intervalMs + jitter);
    // The detector never keeps a process alive on its own.
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      await this.runOnce();
    } catch (error) {
      // A lost connection or a pool busy for connection_timeout_ms passes: a warning, as for the queue
      // consumers. Anything else (a broken function, a permission) needs an operator.
      if (isTransientDatabaseError(error)) {
        this.#logger.warn(
          { err: error },
          'staleness detection interrupted (database connection lost or pool exhausted); it runs again at the next interval',
        );
      } else {
        this.#logger.error({ err: error }, 'staleness detection failed; it runs again at the next interval');
      }
    } finally {
      this.#schedule();
    }
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
