/**
 * `[orchestration.health]`: health with hysteresis, so one slow check does not flip a probe and a flapping
 * dependency does not flap the service. Every evaluation — the background one every
 * `health_check_interval_ms`, and each `/health` request's own live checks — is recorded; the reported status
 * turns unhealthy only after `unhealthy_threshold` failed evaluations in a row, and healthy again only after
 * `recovery_threshold` passed ones in a row. It starts healthy.
 */
export interface HealthEvaluatorSettings {
  intervalMs: number;
  unhealthyThreshold: number;
  recoveryThreshold: number;
}

export type EvaluatedStatus = 'healthy' | 'unhealthy';

export interface HealthEvaluationSnapshot {
  status: EvaluatedStatus;
  consecutive_failures: number;
  consecutive_passes: number;
  last_evaluated_at: string | null;
  interval_ms: number;
  unhealthy_threshold: number;
  recovery_threshold: number;
}

export class HealthEvaluator {
  readonly settings: HealthEvaluatorSettings;
  private readonly evaluate: () => Promise<boolean>;
  private healthy = true;
  private failures = 0;
  private passes = 0;
  private lastEvaluatedAt: Date | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  /** @param evaluate the live checks: true when they pass; a throw counts as a failure. */
  constructor(settings: HealthEvaluatorSettings, evaluate: () => Promise<boolean>) {
    this.settings = {
      intervalMs: settings.intervalMs,
      unhealthyThreshold: Math.max(1, settings.unhealthyThreshold),
      recoveryThreshold: Math.max(1, settings.recoveryThreshold),
    };
    this.evaluate = evaluate;
  }

  get status(): EvaluatedStatus {
    return this.healthy ? 'healthy' : 'unhealthy';
  }

  /** Records one evaluation and returns the status it leaves. */
  record(passed: boolean, at: Date = new Date()): EvaluatedStatus {
    this.lastEvaluatedAt = at;
    if (passed) {
      this.passes += 1;
      this.failures = 0;
      if (!this.healthy && this.passes >= this.settings.recoveryThreshold) this.healthy = true;
    } else {
      this.failures += 1;
      this.passes = 0;
      if (this.healthy && this.failures >= this.settings.unhealthyThreshold) this.healthy = false;
    }
    return this.status;
  }

  /** Evaluates now and every `intervalMs` until stop(). Safe to call twice. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.tick(), this.settings.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  snapshot(): HealthEvaluationSnapshot {
    return {
      status: this.status,
      consecutive_failures: this.failures,
      consecutive_passes: this.passes,
      last_evaluated_at: this.lastEvaluatedAt?.toISOString() ?? null,
      interval_ms: this.settings.intervalMs,
      unhealthy_threshold: this.settings.unhealthyThreshold,
      recovery_threshold: this.settings.recoveryThreshold,
    };
  }

  private async tick(): Promise<void> {
    // A check slower than the interval must not pile up evaluations.
    if (this.running) return;
    this.running = true;
    try {
      this.record(await this.evaluate().catch(() => false));
    } finally {
      this.running = false;
    }
  }
}
