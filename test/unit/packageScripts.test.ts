/**
 * Every file an npm script of package.json runs exists: `npm run demo` once pointed at an example that had
 * been removed, and only a newcomer trying it found out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const scripts = (
  JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }
).scripts;

describe('package.json scripts', () => {
  it('name only files that exist', () => {
    const missing: string[] = [];
    for (const [name, command] of Object.entries(scripts)) {
      // Relative paths of scripts and modules the command runs: bin/tasker.js, scripts/x.ts, bench/a/b.ts.
      for (const path of command.match(/(?<![\w/.-])[\w.-]+(?:\/[\w.-]+)+\.(?:[cm]?[jt]s)\b/g) ?? []) {
        if (!existsSync(`${ROOT}${path}`)) missing.push(`${name}: ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('npm run demo runs the tasker demo command', () => {
    expect(scripts.demo).toBe('node bin/tasker.js demo');
  });
});
