import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { CoordinationMonitor } from '../../../src/coordination/coordinationMonitor.ts';
import {
  defaultCoordination,
  errorBackoffDelay,
  orchestrationCoordination,
  workerCoordination,
} from '../../../src/coordination/coordinationSettings.ts';
import type { CoordinationSettings } from '../../../src/coordination/coordinationSettings.ts';
import { ExecutorPool } from '../../../src/coordination/executorPool.ts';
import type { ListenerState } from '../../../src/messaging/pgmq/notificationListener.ts';

function listener(overrides: Partial<ListenerState> = {}): ListenerState {
  return {
    status: 'connected',
    connected: true,
    channels: ['pgmq_message_ready.orchestration'],
    reconnects: 0,
    consecutiveFailures: 0,
    notificationsReceived: 0,
    lastEventAt: null,
    lastConnectedAt: null,
    notificationsVerified: true,
    lastError: null,
    backendPid: 123,
    lagMs: 1,
    ...overrides,
  };
}

function settings(overrides: Partial<CoordinationSettings> = {}): CoordinationSettings {
  return { ...defaultCoordination(200), fallbackThresholdMs: 1_000, ...overrides };
}

describe('configuration → coordination settings', () => {
  const load = (env: Record<string, string> = {}) =>
    loadConfig({ env: { TASKER_ENV: 'production', ...env } });

  it('Hybrid (the default) listens and polls every queue at polling_interval_ms', () => {
    const { config } = load();
    const orchestration = orchestrationCoordination(config);
    expect(orchestration).toMatchObject({ mode: 'Hybrid', listen: true, poll: true });
    const every = config.orchestration.hybrid.polling_interval_ms;
    expect(orchestration.pollIntervalMs).toEqual({
      taskRequests: every,
      stepResults: every,
      finalizations: every,
    });
    expect(orchestration.listener).toMatchObject({
      reconnectBaseMs: config.orchestration.hybrid.listener_reconnect_interval_ms,
      heartbeatIntervalMs: config.orchestration.hybrid.listener_health_check_interval_ms,
    });
    // Hybrid keeps reconnecting for as long as it runs: polling covers the gap.
    expect(orchestration.listener.maxReconnectAttempts).toBeUndefined();
  });

  it('PollingOnly polls each queue at its own interval and never listens', () => {
    const { config } = load({ TASKER_DEPLOYMENT_MODE: 'PollingOnly' });
    const orchestration = orchestrationCoordination(config);
    expect(orchestration).toMatchObject({ mode: 'PollingOnly', listen: false, poll: true });
    expect(orchestration.pollIntervalMs).toEqual({
      taskRequests: config.orchestration.polling.task_request_poll_interval_ms,
      stepResults: config.orchestration.polling.step_result_poll_interval_ms,
      finalizations: config.orchestration.polling.finalization_poll_interval_ms,
    });
    expect(orchestration.errorBackoff).toEqual({
      baseMs: config.orchestration.polling.error_backoff_base_ms,
      maxMs: config.orchestration.polling.error_backoff_max_ms,
      multiplier: config.orchestration.polling.error_backoff_multiplier,
    });
    const worker = workerCoordination(config);
    expect(worker).toMatchObject({
      listen: false,
      poll: true,
      pollIntervalMs: config.worker.polling.polling_interval_ms,
    });
    expect(worker.batchSize).toBe(config.worker.polling.batch_size);
  });

  it('EventDrivenOnly listens only, and gives up after max_reconnect_attempts', () => {
    const { config } = load({ TASKER_DEPLOYMENT_MODE: 'EventDrivenOnly' });
    const orchestration = orchestrationCoordination(config);
    expect(orchestration).toMatchObject({ mode: 'EventDrivenOnly', listen: true, poll: false });
    expect(orchestration.listener).toMatchObject({
      maxReconnectAttempts: config.orchestration.event_driven.max_reconnect_attempts,
      reconnectBaseMs: config.orchestration.event_driven.listener_reconnect_interval_ms,
      connectTimeoutMs: config.orchestration.event_driven.connection_timeout_ms,
    });
    expect(workerCoordination(config).listener.maxReconnectAttempts).toBe(
      config.worker.event_driven.max_reconnect_attempts,
    );
  });

  it('Hybrid honours enable_event_listeners and enable_polling_fallback', () => {
    const loaded = load();
    loaded.config.worker.hybrid.enable_polling_fallback = false;
    loaded.config.orchestration.hybrid.enable_event_listeners = false;
    expect(workerCoordination(loaded.config)).toMatchObject({ listen: true, poll: false });
    expect(orchestrationCoordination(loaded.config)).toMatchObject({ listen: false, poll: true });
  });
});

describe('errorBackoffDelay', () => {
  it('grows by the multiplier from the base and stops at the cap', () => {
    const backoff = { baseMs: 1_000, maxMs: 30_000, multiplier: 2 };
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => errorBackoffDelay(backoff, n))).toEqual([
      0, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000,
    ]);
    expect(errorBackoffDelay({ baseMs: 100, maxMs: 1_000, multiplier: 1.5 }, 3)).toBe(225);
  });
});

describe('CoordinationMonitor', () => {
  it('Hybrid: a listener down for fallback_activation_threshold_ms switches to polling fallback, and back', () => {
    let state = listener();
    const switches: string[] = [];
    let woken = 0;
    const monitor = new CoordinationMonitor({
      settings: settings(),
      listenerState: () => state,
      onSwitch: (to) => switches.push(to),
    });
    monitor.onFallback(() => (woken += 1));
    monitor.evaluate(0);
    expect(monitor.fallbackActive).toBe(false);
    expect(monitor.pollingPrimary).toBe(false);

    state = listener({ status: 'reconnecting', connected: false });
    monitor.evaluate(10_000);
    monitor.evaluate(10_999);
    expect(monitor.fallbackActive, 'not yet: down for less than the threshold').toBe(false);
    monitor.evaluate(11_000);
    expect(monitor.fallbackActive).toBe(true);
    expect(monitor.pollingPrimary).toBe(true);
    expect(woken, 'consumers are told to look at once').toBe(1);
    expect(monitor.status().polling).toMatchObject({
      active: true,
      fallbackTriggered: true,
      modeSwitches: 1,
    });
    // Polling delivers work meanwhile: the role is healthy, and says why it is degraded.
    expect(monitor.status().canReceiveWork).toBe(true);
    expect(monitor.status().problem).toMatch(/reconnecting; polling delivers work/);

    state = listener();
    monitor.evaluate(12_000);
    expect(monitor.fallbackActive).toBe(false);
    expect(switches).toEqual(['polling_fallback', 'events']);
    expect(monitor.modeSwitches).toBe(2);
  });

  it('Hybrid: a failed self-test or a lag beyond the threshold also switches', () => {
    let state = listener({ notificationsVerified: false });
    const monitor = new CoordinationMonitor({ settings: settings(), listenerState: () => state });
    monitor.evaluate(0);
    expect(monitor.fallbackActive).toBe(true);
    state = listener({ lagMs: 5_000 });
    monitor.evaluate(1);
    expect(monitor.fallbackActive, 'still lagging: no hand-back').toBe(true);
    state = listener({ lagMs: 3 });
    monitor.evaluate(2);
    expect(monitor.fallbackActive).toBe(false);
    state = listener({ lagMs: 1_500 });
    monitor.evaluate(3);
    expect(monitor.fallbackActive).toBe(true);
    expect(monitor.modeSwitches).toBe(3);
  });

  it('EventDrivenOnly: no work can arrive while the listener is down, failed or deaf, and it says why', () => {
    let state = listener();
    const monitor = new CoordinationMonitor({
      settings: settings({ mode: 'EventDrivenOnly', poll: false, listener: { maxReconnectAttempts: 3 } }),
      listenerState: () => state,
    });
    expect(monitor.status()).toMatchObject({ canReceiveWork: true, problem: null, mode: 'event_driven' });
    state = listener({ status: 'failed', connected: false, lastError: 'connection refused' });
    monitor.evaluate(1_000_000);
    expect(monitor.fallbackActive, 'EventDrivenOnly has no fallback').toBe(false);
    expect(monitor.status()).toMatchObject({
      canReceiveWork: false,
      problem: 'LISTEN connection failed after 3 reconnect attempts: connection refused',
    });
    state = listener({ notificationsVerified: false });
    expect(monitor.status().canReceiveWork).toBe(false);
    expect(monitor.status().problem).toMatch(/transaction pooler/);
  });

  it('PollingOnly: polling is always the active path and nothing listens', () => {
    const monitor = new CoordinationMonitor({
      settings: settings({ mode: 'PollingOnly', listen: false, poll: true }),
      listenerState: () => null,
    });
    expect(monitor.pollingPrimary).toBe(true);
    expect(monitor.status()).toMatchObject({
      deploymentMode: 'PollingOnly',
      mode: 'polling_only',
      canReceiveWork: true,
      problem: null,
      eventListeners: { enabled: false, active: false },
      polling: { enabled: true, active: true, fallbackTriggered: false },
    });
  });
});

describe('ExecutorPool', () => {
  it('grows one per sample above the high watermark up to max, shrinks below the low one down to min', () => {
    const pool = new ExecutorPool({
      name: 'x',
      minExecutors: 2,
      maxExecutors: 4,
      highWatermark: 100,
      lowWatermark: 10,
    });
    expect(pool.limit).toBe(2);
    const limits = [500, 500, 500, 500, 50, 50, 5, 5, 5, 5].map((depth) => {
      pool.observeDepth(depth);
      return pool.limit;
    });
    expect(limits).toEqual([3, 4, 4, 4, 4, 4, 3, 2, 2, 2]);
    expect(pool.snapshot()).toMatchObject({
      min: 2,
      max: 4,
      limit: 2,
      queue_depth: 5,
      scale_ups: 2,
      scale_downs: 2,
    });
  });
});
