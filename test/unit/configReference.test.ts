import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigReference } from '../../src/config/configReference.ts';
import { configSchema } from '../../src/config/schema.ts';

describe('docs/configuration.md', () => {
  it('is what the schema renders (run `npm run docs:config` after changing the schema)', () => {
    const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderConfigReference());
  });

  it('documents every key with its default', () => {
    const rendered = renderConfigReference();
    const keys: string[] = [];
    const walk = (value: unknown, prefix: string): void => {
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        for (const [key, child] of Object.entries(value))
          walk(child, prefix === '' ? key : `${prefix}.${key}`);
      } else {
        keys.push(prefix);
      }
    };
    walk(configSchema.parse({}), '');
    expect(keys.length).toBeGreaterThan(80);
    for (const key of keys) {
      const table = key.split('.').slice(0, -1).join('.');
      const leaf = key.split('.').at(-1) ?? '';
      const section = rendered.split(`## [${table}]\n`)[1]?.split('\n## ')[0] ?? '';
      expect(section, `${key} is missing from docs/configuration.md`).toContain(`| \`${leaf}\` |`);
    }
  });
});
