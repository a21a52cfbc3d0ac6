import type { DeploymentMode } from '../config/schema.ts';
import type { ListenerState } from '../messaging/pgmq/notificationListener.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { modeLabel } from '../observability/modeLabel.ts';
import type { CoordinationSettings } from './coordinationSettings.ts';

/** What the monitor reads of the LISTEN connection (NotificationListener.state). */
export type ListenerStateSource = () => Readonly<ListenerState> | null;

export type CoordinationSource = 'events' | 'polling_fallback';

export interface CoordinationStatus {
  deploymentMode: DeploymentMode;
  mode: string;
  eventListeners: {
    enabled: boolean;
    active: boolean;
    status: string;
    channels: number;
    lagMs: number | null;
    notificationsVerified: boolean | null;
    reconnects: number;
    backendPid: number | null;
  };
  polling: {
    enabled: boolean;
    /** Polling is what delivers work now: PollingOnly, or Hybrid in active fallback. */
    active: boolean;
    fallbackTriggered: boolean;
    /** How many times Hybrid switched between events and polling fallback. */
    modeSwitches: number;
  };
  /** Whether work can reach this role, and why not. */
  canReceiveWork: boolean;
  problem: string | null;
}

/** How often Hybrid re-evaluates its listener (at most; a shorter fallback threshold makes it more often). */
const EVALUATE_EVERY_MS = 1_000;

/**
 * One per role and process: watches the LISTEN connection and decides what that means for the mode.
 *  - Hybrid: events are primary. When the listener has been down for fallback_activation_threshold_ms, fails
 *    its self-test (notifications not arriving, e.g. behind a transaction pooler), or lags beyond the
 *    threshold, polling becomes the active path (every poll runs, even right after a drain); when the
 *    listener is back and verified, events take over again. Each switch is counted and logged.
 *  - EventDrivenOnly: nothing else delivers work, so a failed listener (max_reconnect_attempts spent) or one
 *    whose notifications do not arrive makes the role unhealthy.
 *  - PollingOnly: no listener; polling is always the active path.
 */
export class CoordinationMonitor {
  readonly settings: CoordinationSettings;
  private readonly listenerState: ListenerStateSource;
  private readonly logger: Logger;
  private readonly onSwitch: ((to: CoordinationSource) => void) | undefined;
  private readonly fallbackListeners = new Set<() => void>();
  private fallback = false;
  private switches = 0;
  private downSince: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: {
    settings: CoordinationSettings;
    listenerState: ListenerStateSource;
    logger?: Logger;
    /** Counted by the metrics (tasker_mode_switches_total). */
    onSwitch?: (to: CoordinationSource) => void;
  }) {
    this.settings = options.settings;
    this.listenerState = options.listenerState;
    this.logger = options.logger ?? silentLogger;
    this.onSwitch = options.onSwitch;
  }

  get mode(): DeploymentMode {
    return this.settings.mode;
  }

  /** Hybrid in active fallback. */
  get fallbackActive(): boolean {
    return this.fallback;
  }

  get modeSwitches(): number {
    return this.switches;
  }

  /** Polling is what delivers work now (every poll runs). */
  get pollingPrimary(): boolean {
    return (
      this.settings.mode === 'PollingOnly' || this.fallback || (this.settings.poll && !this.settings.listen)
    );
  }

  /** Called when Hybrid switches to fallback: consumers look at their queues at once. */
  onFallback(listener: () => void): () => void {
    this.fallbackListeners.add(listener);
    return () => this.fallbackListeners.delete(listener);
  }

  start(): void {
    if (this.timer !== null || this.settings.mode !== 'Hybrid' || !this.settings.listen) return;
    const every = Math.max(
      50,
      Math.min(EVALUATE_EVERY_MS, Math.floor(this.settings.fallbackThresholdMs / 2)),
    );
    this.timer = setInterval(() => this.evaluate(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Re-reads the listener and switches Hybrid between events and fallback when needed. */
  evaluate(now: number = Date.now()): void {
    if (this.settings.mode !== 'Hybrid' || !this.settings.listen) return;
    const state = this.listenerState();
    const connected = state?.connected === true;
    if (connected) this.downSince = null;
    else this.downSince ??= now;
    const threshold = this.settings.fallbackThresholdMs;
    const reason = !connected
      ? now - (this.downSince ?? now) >= threshold
        ? `listener ${state?.status ?? 'absent'} for ${now - (this.downSince ?? now)} ms`
        : null
      : state.notificationsVerified === false
        ? 'notifications do not arrive on the listen connection (LISTEN self-test failed)'
        : state.lagMs !== null && state.lagMs > threshold
          ? `notification lag ${state.lagMs} ms above ${threshold} ms`
          : null;
    const healthy = connected && state.notificationsVerified !== false && (state.lagMs ?? 0) <= threshold;
    if (!this.fallback && reason !== null) {
      this.switch(true, reason);
    } else if (this.fallback && healthy) {
      this.switch(false, 'listener connected and notifications verified');
    }
  }

  private switch(toFallback: boolean, reason: string): void {
    this.fallback = toFallback;
    this.switches += 1;
    const to: CoordinationSource = toFallback ? 'polling_fallback' : 'events';
    this.onSwitch?.(to);
    if (toFallback) {
      this.logger.warn(
        { reason, mode: 'Hybrid' },
        'polling fallback activated: polling delivers work until listeners recover',
      );
      for (const listener of this.fallbackListeners) listener();
    } else {
      this.logger.info(
        { reason, mode: 'Hybrid' },
        'listeners recovered: events deliver work again, polling back to safety net',
      );
    }
  }

  status(): CoordinationStatus {
    const { mode, listen, poll } = this.settings;
    const state = listen ? this.listenerState() : null;
    const connected = state?.connected === true;
    let problem: string | null = null;
    if (listen && state?.status === 'failed') {
      problem = `LISTEN connection failed after ${this.settings.listener.maxReconnectAttempts ?? 'all'} reconnect attempts: ${state.lastError ?? 'unknown error'}`;
    } else if (listen && state?.notificationsVerified === false) {
      problem =
        'notifications do not arrive on the LISTEN connection (a transaction pooler between Tasker and PostgreSQL causes this)';
    } else if (listen && !connected) {
      problem = `LISTEN connection ${state?.status ?? 'absent'}`;
    }
    // Without polling (EventDrivenOnly) only a connected listener whose notifications arrive delivers work;
    // while it reconnects nothing arrives (it catches up once back), so the role says it cannot take work.
    const canReceiveWork = poll || (listen && connected && state.notificationsVerified !== false);
    return {
      deploymentMode: mode,
      mode: modeLabel(mode),
      eventListeners: {
        enabled: listen,
        active: connected,
        status: state?.status ?? 'stopped',
        channels: state?.channels.length ?? 0,
        lagMs: state?.lagMs ?? null,
        notificationsVerified: state?.notificationsVerified ?? null,
        reconnects: state?.reconnects ?? 0,
        backendPid: state?.backendPid ?? null,
      },
      polling: {
        enabled: poll,
        active: poll && this.pollingPrimary,
        fallbackTriggered: this.fallback,
        modeSwitches: this.switches,
      },
      canReceiveWork,
      problem:
        canReceiveWork && poll ? (problem === null ? null : `${problem}; polling delivers work`) : problem,
    };
  }
}
