import { ConfigError } from '../domain/errors.ts';
import type { ConfigProblem } from '../domain/errors.ts';
import { defaultConfigRoot, readConfigFiles } from './configFiles.ts';
import { environmentOverrides } from './environmentOverrides.ts';
import type { Env } from './environmentOverrides.ts';
import { interpolate, isPlainObject } from './interpolate.ts';
import type { TaskerConfig } from './schema.ts';
import { validateConfig } from './validateConfig.ts';
import { configSchema } from './schema.ts';
import { schemaAt, unwrap } from './schemaBuilder.ts';

export interface LoadConfigOptions {
  /** @defaultValue process.env */
  env?: Env;
  /** Resolves relative paths. @defaultValue process.cwd() */
  cwd?: string;
}

export interface LoadedConfig {
  config: TaskerConfig;
  environment: string;
  /** The folder holding base/ and environments/, or undefined when TASKER_CONFIG_PATH named one file. */
  folder: string | undefined;
  /** Files read, in merge order (relative to `folder`). */
  files: string[];
  /** Dotted key path → the file or variable that set it last. */
  provenance: ReadonlyMap<string, string>;
}

const ENVIRONMENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Deep-merges `layer` into `target`: tables merge key by key, anything else replaces. */
function mergeLayer(
  target: Record<string, unknown>,
  layer: Record<string, unknown>,
  source: string,
  provenance: Map<string, string>,
  prefix = '',
): void {
  for (const [key, value] of Object.entries(layer)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    provenance.set(path, source);
    const existing = target[key];
    if (isPlainObject(value) && isPlainObject(existing)) {
      mergeLayer(existing, value, source, provenance, path);
    } else if (isPlainObject(value)) {
      const copy: Record<string, unknown> = {};
      target[key] = copy;
      mergeLayer(copy, value, source, provenance, path);
    } else {
      target[key] = value;
    }
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let current = target;
  for (const key of path.slice(0, -1)) {
    const next = current[key];
    if (!isPlainObject(next)) current[key] = {};
    current = current[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (last !== undefined) current[last] = value;
}

/** `"${PORT}"` resolved to "8080" becomes 8080 where the schema expects a number (likewise booleans). */
function typeWholeReferences(merged: Record<string, unknown>, paths: ReadonlySet<string>): void {
  for (const path of paths) {
    if (path.includes('[')) continue;
    const keys = path.split('.');
    const node = schemaAt(configSchema, keys);
    if (node === undefined) continue;
    const type = (unwrap(node).def as { type: string }).type;
    const parent = keys
      .slice(0, -1)
      .reduce<unknown>((current, key) => (isPlainObject(current) ? current[key] : undefined), merged);
    const last = keys[keys.length - 1];
    if (!isPlainObject(parent) || last === undefined || typeof parent[last] !== 'string') continue;
    const text = parent[last];
    if (type === 'number' && /^-?\d+(\.\d+)?$/.test(text)) parent[last] = Number(text);
    if (type === 'boolean' && (text === 'true' || text === 'false')) parent[last] = text === 'true';
  }
}

/**
 * Loads the configuration for TASKER_ENV: base files, the environment's files over them, `${VAR}` references
 * resolved, then the seed's environment variables over everything, validated against the schema.
 * @throws ConfigError listing every problem found, each with file, key path, expected and found.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: ConfigProblem[] = [];
  const environment = (env.TASKER_ENV ?? '').trim() || 'development';
  if (!ENVIRONMENT_NAME.test(environment)) {
    throw new ConfigError([
      {
        source: 'environment variable TASKER_ENV',
        path: '',
        message: `expected an environment name (lowercase letters, digits, - and _), found ${JSON.stringify(environment)}`,
      },
    ]);
  }
  const configPath = env.TASKER_CONFIG_PATH?.trim() || undefined;
  const configRoot = env.TASKER_CONFIG_ROOT?.trim() || defaultConfigRoot(cwd);
  const layout = readConfigFiles(
    { configRoot, environment, configPath, cwd, environmentRequired: (env.TASKER_ENV ?? '').trim() !== '' },
    problems,
  );

  const merged: Record<string, unknown> = {};
  const provenance = new Map<string, string>();
  const wholeReferences = new Set<string>();
  for (const file of layout.files) {
    const context = { env, source: file.source, problems, wholeReferences };
    mergeLayer(
      merged,
      interpolate(file.data, '', context) as Record<string, unknown>,
      file.source,
      provenance,
    );
  }
  typeWholeReferences(merged, wholeReferences);
  for (const override of environmentOverrides(env, problems)) {
    setPath(merged, override.path, override.value);
    provenance.set(override.path.join('.'), `environment variable ${override.variable}`);
  }

  const validation = validateConfig(merged, provenance);
  // A value whose variable was missing is already reported; its empty stand-in is not a second mistake.
  const reported = new Set(problems.map((problem) => problem.path));
  problems.push(...validation.problems.filter((problem) => !reported.has(problem.path)));
  if (problems.length > 0 || validation.config === undefined) throw new ConfigError(problems);
  return {
    config: validation.config,
    environment,
    folder: layout.folder,
    files: layout.files.map((file) => file.source),
    provenance,
  };
}
