import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, TomlError } from 'smol-toml';
import type { ConfigProblem } from '../domain/errors.ts';

/** The configuration shipped with Tasker, used when the working directory has no `config/tasker/`. */
export const BUNDLED_CONFIG_ROOT = fileURLToPath(new URL('../../config', import.meta.url));

interface ConfigFile {
  /** Where problems are reported: relative to `<root>/tasker/`, e.g. `environments/production/database.toml`. */
  source: string;
  data: Record<string, unknown>;
}

export interface ConfigLayout {
  /** `<root>/tasker`, or undefined for a single file. */
  folder: string | undefined;
  files: ConfigFile[];
}

function tomlFilesIn(folder: string): string[] {
  return readdirSync(folder)
    .filter((name) => name.endsWith('.toml'))
    .sort()
    .map((name) => join(folder, name));
}

function parseFile(path: string, source: string, problems: ConfigProblem[]): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    problems.push({ source, path: '', message: `cannot read the file: ${(error as Error).message}` });
    return undefined;
  }
  try {
    return { source, data: parse(text) };
  } catch (error) {
    if (error instanceof TomlError) {
      // smol-toml's message ends with a code frame; the first line says what is wrong.
      const reason = error.message.split('\n')[0] ?? error.message;
      problems.push({
        source: `${source}:${error.line}:${error.column}`,
        path: '',
        message: `TOML syntax error: ${reason}`,
      });
      return undefined;
    }
    throw error;
  }
}

/**
 * Finds and parses the files for one environment: every `base/*.toml`, then every
 * `environments/<environment>/*.toml`, each folder in name order. `configPath` (TASKER_CONFIG_PATH) replaces
 * the whole layout with one file.
 */
export function readConfigFiles(
  options: {
    configRoot: string;
    environment: string;
    configPath?: string | undefined;
    cwd: string;
    /** False when TASKER_ENV was not set: a layout without environments/development/ is then just base. */
    environmentRequired?: boolean;
  },
  problems: ConfigProblem[],
): ConfigLayout {
  if (options.configPath !== undefined) {
    const path = resolve(options.cwd, options.configPath);
    if (!existsSync(path) || !statSync(path).isFile()) {
      problems.push({
        source: 'environment variable TASKER_CONFIG_PATH',
        path: '',
        message: `no file at ${path}: point TASKER_CONFIG_PATH at a TOML file, or unset it to use config/tasker/`,
      });
      return { folder: undefined, files: [] };
    }
    const file = parseFile(path, options.configPath, problems);
    return { folder: undefined, files: file === undefined ? [] : [file] };
  }

  const folder = join(resolve(options.cwd, options.configRoot), 'tasker');
  const baseFolder = join(folder, 'base');
  if (!existsSync(baseFolder)) {
    problems.push({
      source: folder,
      path: '',
      message: 'no base/ folder here: set TASKER_CONFIG_ROOT to the folder that holds tasker/base/*.toml',
    });
    return { folder, files: [] };
  }
  const environmentsFolder = join(folder, 'environments');
  const environmentFolder = join(environmentsFolder, options.environment);
  const paths = tomlFilesIn(baseFolder);
  if (existsSync(environmentFolder)) {
    paths.push(...tomlFilesIn(environmentFolder));
  } else if (options.environmentRequired !== false) {
    const known = existsSync(environmentsFolder)
      ? readdirSync(environmentsFolder).filter((name) =>
          statSync(join(environmentsFolder, name)).isDirectory(),
        )
      : [];
    problems.push({
      source: 'environment variable TASKER_ENV',
      path: '',
      message:
        `unknown environment "${options.environment}": no folder environments/${options.environment}/ under ${folder}` +
        ` (known: ${known.sort().join(', ') || 'none'}). Create the folder or fix TASKER_ENV.`,
    });
  }
  const files: ConfigFile[] = [];
  for (const path of paths) {
    const file = parseFile(path, relative(folder, path), problems);
    if (file !== undefined) files.push(file);
  }
  return { folder, files };
}

/** `./config` when it holds `tasker/`, else the configuration bundled with Tasker. */
export function defaultConfigRoot(cwd: string): string {
  return existsSync(join(cwd, 'config', 'tasker')) ? join(cwd, 'config') : BUNDLED_CONFIG_ROOT;
}
