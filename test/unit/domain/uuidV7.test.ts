import { describe, expect, it } from 'vitest';
import { validate, version } from 'uuid';
import { uuidv7 } from '../../../src/domain/identity/uuidV7.ts';

describe('uuidv7 (pooled random bytes)', () => {
  it('makes valid, distinct version-7 keys with the RFC 9562 variant, across many pool refills', () => {
    const keys = Array.from({ length: 5_000 }, () => uuidv7());
    expect(new Set(keys).size).toBe(keys.length);
    for (const key of keys) {
      expect(validate(key)).toBe(true);
      expect(version(key)).toBe(7);
      // Variant 10xx: the first hex digit of the fourth group is 8, 9, a or b.
      expect(key[19]).toMatch(/[89ab]/);
    }
  });

  it('sorts in the order the keys were made', () => {
    const keys = Array.from({ length: 5_000 }, () => uuidv7());
    expect([...keys].sort()).toEqual(keys);
  });

  it('carries the current time in its first 48 bits', () => {
    const before = Date.now();
    const key = uuidv7();
    const after = Date.now();
    const msecs = Number.parseInt(key.replace(/-/g, '').slice(0, 12), 16);
    expect(msecs).toBeGreaterThanOrEqual(before);
    // A full counter moves a key into the next millisecond, never further.
    expect(msecs).toBeLessThanOrEqual(after + 1);
  });

  it('draws different random bits for keys of the same millisecond', () => {
    const keys = Array.from({ length: 300 }, () => uuidv7());
    const tails = new Set(keys.map((key) => key.slice(-12)));
    // The last 48 bits are random: 300 keys repeating one would mean the pool handed out the same bytes.
    expect(tails.size).toBe(keys.length);
  });
});
