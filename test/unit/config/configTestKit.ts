import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import type { Env } from '../../../src/config/environmentOverrides.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import type { LoadedConfig } from '../../../src/config/loadConfig.ts';
import { ConfigError, formatConfigProblem } from '../../../src/domain/errors.ts';
import type { ConfigProblem } from '../../../src/domain/errors.ts';

/**
 * Shared by the configuration tests: temporary config roots (removed after each test), the seed fixtures,
 * and small helpers to load a root with an explicit env (process.env is never read or changed).
 */

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SHIPPED_BASE = join(REPO_ROOT, 'config', 'tasker', 'base');
export const SEED_FIXTURES = fileURLToPath(new URL('../../fixtures/config/seed/', import.meta.url));
/** The seed document the fixtures were copied from; outside the repository, so it may be absent. */
export const SEED_DOCUMENT = join(REPO_ROOT, '..', 'shared', 'spec', 'deployment-patterns.txt');

export interface ConfigRoot {
  /** The folder to use as TASKER_CONFIG_ROOT (it holds `tasker/`). */
  dir: string;
  /** `<dir>/tasker`, what LoadedConfig.folder reports. */
  folder: string;
  /** Writes a file relative to `<dir>/tasker/`, e.g. `environments/production/database.toml`. */
  write(path: string, text: string): string;
  /** Loads this root with exactly `env` (plus TASKER_CONFIG_ROOT pointing here). */
  load(env?: Env): LoadedConfig;
  /** The problems of a load that must fail. */
  problems(env?: Env): readonly ConfigProblem[];
  /** The same problems as `tasker config validate` prints them. */
  formatted(env?: Env): string[];
}

export interface RootOptions {
  /** Copy the shipped `config/tasker/base` into the root (default true). */
  shippedBase?: boolean;
  /** Files relative to `<dir>/tasker/`. */
  files?: Record<string, string>;
  /** Put `tasker/` under `<dir>/config/` instead of `<dir>/` (to test the cwd default). */
  underConfig?: boolean;
}

/** Every temporary folder of the running test file; removed after each test. */
const created: string[] = [];

afterEach(() => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'tasker-config-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** The problems of a call that must throw ConfigError; fails the test if it does not. */
export function configProblems(run: () => unknown): readonly ConfigProblem[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

export function configRoot(options: RootOptions = {}): ConfigRoot {
  const dir = tempDir();
  const configDir = options.underConfig === true ? join(dir, 'config') : dir;
  const folder = join(configDir, 'tasker');
  mkdirSync(join(folder, 'base'), { recursive: true });
  if (options.shippedBase !== false) cpSync(SHIPPED_BASE, join(folder, 'base'), { recursive: true });
  const write = (path: string, text: string): string => {
    const target = join(folder, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    return target;
  };
  for (const [path, text] of Object.entries(options.files ?? {})) write(path, text);
  const load = (env: Env = {}): LoadedConfig =>
    loadConfig({ env: { TASKER_CONFIG_ROOT: configDir, ...env }, cwd: dir });
  const problems = (env: Env = {}): readonly ConfigProblem[] => configProblems(() => load(env));
  return {
    dir: configDir,
    folder,
    write,
    load,
    problems,
    formatted: (env: Env = {}) => problems(env).map(formatConfigProblem),
  };
}

/** The seed fixture files of one scenario: file name → verbatim text. */
export function seedScenario(name: string): Record<string, string> {
  const folder = join(SEED_FIXTURES, name);
  return Object.fromEntries(
    readdirSync(folder)
      .filter((file) => file.endsWith('.toml'))
      .map((file) => [file, readFileSync(join(folder, file), 'utf8')]),
  );
}

/** A root with the shipped base and the scenario's seed files as `environments/<environment>/<file>`. */
export function seedRoot(scenario: string, environment = scenario): ConfigRoot {
  const files: Record<string, string> = {};
  for (const [file, text] of Object.entries(seedScenario(scenario))) {
    files[`environments/${environment}/${file}`] = text;
  }
  return configRoot({ files });
}

export function seedScenarios(): string[] {
  return readdirSync(SEED_FIXTURES).sort();
}
