/**
 * An open breaker recovers as fast as its dependency: the prober tries it with a capped exponential backoff
 * from its first delay and half-opens the breaker on the first answer, long before `timeout_seconds`; Retry-After
 * tells callers when the next probe runs. Real timers, short delays.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BreakerProber } from '../../../src/resilience/breakerProber.ts';
import { CircuitBreaker } from '../../../src/resilience/circuitBreaker.ts';
import { createMemoryLogger } from '../../helpers/engine/memoryLogger.ts';

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

function probedBreaker(probe: () => Promise<void>, options: { initialDelayMs: number; maxDelayMs?: number }) {
  const logs = createMemoryLogger('debug');
  const breaker: CircuitBreaker = new CircuitBreaker({
    name: 'database',
    errorThreshold: 1,
    timeoutSeconds: 60,
    halfOpenTimeoutSeconds: 30,
    // Called only on transitions, after `prober` below exists.
    onTransition: (transition) => prober.onTransition(transition),
  });
  const prober = new BreakerProber(breaker, { probe, logger: logs.logger, ...options });
  return { breaker, prober, logs };
}

async function open(breaker: CircuitBreaker): Promise<void> {
  await expect(breaker.execute(() => Promise.reject(refused()))).rejects.toThrow('ECONNREFUSED');
  expect(breaker.state).toBe('open');
}

async function until(condition: () => boolean, ms: number): Promise<number> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await sleep(5);
  }
  return performance.now() - started;
}

describe('BreakerProber', () => {
  it('half-opens the breaker on the first probe that answers, backing off between failures', async () => {
    const probes: number[] = [];
    let failuresLeft = 2;
    const { breaker, prober } = probedBreaker(
      () => {
        probes.push(performance.now());
        return failuresLeft-- > 0 ? Promise.reject(refused()) : Promise.resolve();
      },
      { initialDelayMs: 40 },
    );
    try {
      await open(breaker);
      // Retry-After is the next probe (1 s rounded up), not the 60 s timeout.
      expect(breaker.retryAfterSeconds()).toBe(1);
      expect(breaker.snapshot().nextProbeAt).not.toBeNull();
      await until(() => breaker.state === 'half_open', 2_000);
      expect(probes).toHaveLength(3);
      const gaps = [probes[1]! - probes[0]!, probes[2]! - probes[1]!];
      // 40 ms, then 80 ms, then 160 ms: each wait doubles.
      expect(gaps[0]).toBeGreaterThanOrEqual(75);
      expect(gaps[1]).toBeGreaterThanOrEqual(155);
      expect(breaker.snapshot().recentTransitions.at(-1)?.reason).toBe('probe_succeeded');
      // The next real call is the trial that closes it.
      await breaker.execute(() => Promise.resolve(1));
      expect(breaker.state).toBe('closed');
    } finally {
      prober.stop();
    }
  });

  it('caps the wait between probes and stops probing once the breaker is no longer open', async () => {
    let calls = 0;
    const { breaker, prober } = probedBreaker(
      () => {
        calls += 1;
        return Promise.reject(refused());
      },
      { initialDelayMs: 10, maxDelayMs: 30 },
    );
    try {
      await open(breaker);
      await sleep(250);
      // 10, 20, then every 30 ms: about 8 probes in 250 ms; uncapped doubling would have made 4.
      expect(calls).toBeGreaterThanOrEqual(6);
      prober.stop();
      const stoppedAt = calls;
      await sleep(100);
      expect(calls).toBe(stoppedAt);
      expect(breaker.state).toBe('open');
    } finally {
      prober.stop();
    }
  });

  it('counts a probe that never answers as failed', async () => {
    let calls = 0;
    const { breaker, prober } = probedBreaker(
      () => {
        calls += 1;
        return new Promise<void>(() => undefined);
      },
      { initialDelayMs: 10 },
    );
    const timed = new BreakerProber(breaker, {
      probe: () => new Promise<void>(() => undefined),
      logger: createMemoryLogger('debug').logger,
      initialDelayMs: 10,
      probeTimeoutMs: 20,
    });
    try {
      prober.stop();
      await open(breaker);
      timed.onTransition({
        breaker: 'database',
        from: 'closed',
        to: 'open',
        at: new Date(),
        reason: 'error_threshold_reached',
        consecutiveFailures: 1,
        lastError: 'ECONNREFUSED',
        retryAfterSeconds: 60,
      });
      await sleep(120);
      expect(breaker.state).toBe('open');
      expect(calls).toBe(0);
    } finally {
      timed.stop();
    }
  });
});
