import type { Logger } from '../../observability/logger.ts';
import { runHealthProvider, withNotServing } from './healthReport.ts';
import type { HealthProvider, HealthReport } from './healthReport.ts';

export interface ReadinessMonitorOptions {
  readiness: HealthProvider;
  /** A readiness evaluation that takes longer counts as unhealthy. */
  timeoutMs: number;
  logger: Logger;
  /** Called when the serving verdict changes (and not otherwise). */
  onServingChange: (serving: boolean) => void;
}

/**
 * Keeps the process's readiness verdict current for the gRPC health services. Concurrent callers share one
 * evaluation in flight, so a burst of probes costs one readiness call. `setServing(false)` overrides
 * every report until `setServing(true)`.
 */
export class ReadinessMonitor {
  private readonly options: ReadinessMonitorOptions;
  private inFlight: Promise<HealthReport> | undefined;
  private lastReport: HealthReport | undefined;
  private markedServing = true;
  /** undefined until the first verdict, so the first one is always logged. */
  private verdict: boolean | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: ReadinessMonitorOptions) {
    this.options = options;
  }

  /** Evaluates readiness now (or joins the evaluation in flight). Never rejects. */
  check(): Promise<HealthReport> {
    this.inFlight ??= runHealthProvider(
      this.options.readiness,
      this.options.timeoutMs,
      this.options.logger,
    ).then((report) => {
      this.inFlight = undefined;
      this.lastReport = report;
      this.update();
      return this.applyServing(report);
    });
    return this.inFlight;
  }

  /** The report as clients should see it: unhealthy while the process is marked not serving. */
  applyServing(report: HealthReport): HealthReport {
    return this.markedServing ? report : withNotServing(report);
  }

  setServing(serving: boolean): void {
    this.markedServing = serving;
    this.update();
    if (serving) void this.check();
  }

  /** Re-evaluates every `intervalMs` so Watch streams see changes without anyone calling Check. */
  start(intervalMs: number): void {
    if (this.timer !== undefined) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), intervalMs);
    // The refresh must never keep a process alive on its own.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private update(): void {
    const serving =
      this.markedServing && this.lastReport !== undefined && this.lastReport.status !== 'unhealthy';
    if (serving === this.verdict) return;
    this.verdict = serving;
    const failing = Object.entries(this.lastReport?.checks ?? {})
      .filter(([, check]) => check.status === 'unhealthy')
      .map(([name, check]) => (check.message === undefined ? name : `${name}: ${check.message}`));
    if (serving) {
      this.options.logger.info('gRPC health: SERVING');
    } else {
      this.options.logger.warn({ failing, markedServing: this.markedServing }, 'gRPC health: NOT_SERVING');
    }
    this.options.onServingChange(serving);
  }
}
