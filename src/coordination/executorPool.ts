/**
 * Elastic concurrency of one orchestration stage (task_initializer, result_processor, step_enqueuer): how
 * many drains of its queue may run at once. The limit starts at min_executors, grows by one per depth sample
 * above the high watermark (toward max_executors) and shrinks by one per sample below the low watermark
 * (toward min_executors). Extra drains only start when a drain found a full batch, so a quiet queue never
 * costs more than one reader, whatever the limit.
 */
export interface ExecutorPoolSettings {
  name: string;
  minExecutors: number;
  maxExecutors: number;
  highWatermark: number;
  lowWatermark: number;
}

export interface ExecutorPoolSnapshot {
  /** Drains running now. */
  active: number;
  /** Drains allowed at once now (between min and max). */
  limit: number;
  min: number;
  max: number;
  /** Visible messages at the last sample; null before the first. */
  queue_depth: number | null;
  high_watermark: number;
  low_watermark: number;
  /** Times the limit grew / shrank. */
  scale_ups: number;
  scale_downs: number;
}

export class ExecutorPool {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  private readonly high: number;
  private readonly low: number;
  private currentLimit: number;
  private depth: number | null = null;
  private ups = 0;
  private downs = 0;
  /** Maintained by the consumer that runs the drains. */
  active = 0;

  constructor(settings: ExecutorPoolSettings) {
    this.name = settings.name;
    this.min = Math.max(1, settings.minExecutors);
    this.max = Math.max(this.min, settings.maxExecutors);
    this.high = settings.highWatermark;
    this.low = Math.min(settings.lowWatermark, settings.highWatermark);
    this.currentLimit = this.min;
  }

  get limit(): number {
    return this.currentLimit;
  }

  get queueDepth(): number | null {
    return this.depth;
  }

  /** A depth sample of the stage's queue (visible messages): grows or shrinks the limit by one. */
  observeDepth(depth: number): void {
    this.depth = depth;
    if (depth > this.high && this.currentLimit < this.max) {
      this.currentLimit += 1;
      this.ups += 1;
    } else if (depth < this.low && this.currentLimit > this.min) {
      this.currentLimit -= 1;
      this.downs += 1;
    }
  }

  snapshot(): ExecutorPoolSnapshot {
    return {
      active: this.active,
      limit: this.currentLimit,
      min: this.min,
      max: this.max,
      queue_depth: this.depth,
      high_watermark: this.high,
      low_watermark: this.low,
      scale_ups: this.ups,
      scale_downs: this.downs,
    };
  }
}
