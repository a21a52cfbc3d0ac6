import { describe, expect, it } from 'vitest';
import {
  compareTemplateVersions,
  latestTemplateVersion,
} from '../../../src/domain/template/templateVersion.ts';

describe('template versions in semantic version order', () => {
  it('orders numerically, a pre-release below its release, ignoring build metadata', () => {
    const sorted = [
      '1.10.0',
      '1.0.0-alpha',
      '2.0.0-beta.2',
      '1.0.0',
      '1.9.0',
      '2.0.0-beta.10',
      '1.0.0-alpha.1',
      '2.0.0',
    ]
      .slice()
      .sort(compareTemplateVersions);
    expect(sorted).toEqual([
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0',
      '1.9.0',
      '1.10.0',
      '2.0.0-beta.2',
      '2.0.0-beta.10',
      '2.0.0',
    ]);
    expect(compareTemplateVersions('1.0.0+build.7', '1.0.0')).toBe(0);
  });

  it('picks the highest, or none of an empty list', () => {
    expect(latestTemplateVersion(['1.9.0', '1.10.0', '1.2.0'])).toBe('1.10.0');
    expect(latestTemplateVersion([])).toBeUndefined();
  });
});
