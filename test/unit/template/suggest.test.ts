import { describe, expect, it } from 'vitest';
import { closestMatch } from '../../../src/domain/template/suggest.ts';

describe('closestMatch', () => {
  it('matches another spelling style of the same key', () => {
    expect(closestMatch('maxAttempts', ['retryable', 'max_attempts'])).toBe('max_attempts');
    expect(closestMatch('Timeout-Seconds', ['timeout_seconds'])).toBe('timeout_seconds');
  });

  it('counts a swap of two neighbouring letters as one typo', () => {
    expect(closestMatch('stroe', ['fetch', 'store', 'notify'])).toBe('store');
    expect(closestMatch('validate_refnd', ['validate_refund', 'reverse_charge'])).toBe('validate_refund');
  });

  it('prefers the key a shortened word abbreviates over a shorter key it contains', () => {
    expect(closestMatch('timeout', ['timeout_seconds'])).toBe('timeout_seconds');
    expect(closestMatch('namespace', ['name', 'namespace_name'])).toBe('namespace_name');
  });

  it('suggests nothing when no candidate is close, or the word is too short to tell', () => {
    expect(closestMatch('audit_everything', ['validate_refund', 'reverse_charge'])).toBeUndefined();
    expect(closestMatch('d', ['a', 'b', 'c'])).toBeUndefined();
    expect(closestMatch('', ['a'])).toBeUndefined();
    expect(closestMatch('anything', [])).toBeUndefined();
  });
});
