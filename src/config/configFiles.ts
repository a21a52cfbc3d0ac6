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

/**
 * What a TOML mistake usually is, by smol-toml's reason (its message has no code, so its words are the key; an
 * unmatched reason gets no hint rather than a wrong one).
 */
const TOML_HINTS: readonly [RegExp, string][] = [
  [
    /illegal character in key|illegal empty bare key|cannot find end of key/,
    'a bare key holds only letters, digits, _ and -: write max_connections = 5, or quote the key ("my key" = 5)',
  ],
  [/unfinished string/, 'close the string with the quote it opened with, on the same line'],
  [
    /invalid value|unfinished numeric value/,
    'a value is a "quoted string", a number, true or false, an [array] or an {inline = "table"}',
  ],
  [/followed by an end-of-line/, 'one key = value per line; comments start with #'],
  [/unfinished table|end of table array/, 'a table header is [name] or [[name]] on a line of its own'],
  [/redefine/, 'each key and each [table] may appear only once per file'],
  [
    /unfinished array|expected comma/,
    'separate array and inline-table items with commas and close the bracket',
  ],
];

/** `reason (near "line"); hint`, from smol-toml's error: its message ends with a code frame we replace. */
function tomlSyntaxMessage(error: TomlError, text: string): string {
  const reason = (error.message.split('\n')[0] ?? error.message).replace(/^Invalid TOML document: /, '');
  const line = text.split(/\r?\n/)[error.line - 1]?.trim() ?? '';
  const near =
    line === '' ? '' : ` near ${JSON.stringify(line.length > 60 ? `${line.slice(0, 57)}...` : line)}`;
  // An unclosed [table] header is reported as a bad key: the header's own line says which it is.
  const hint =
    line.startsWith('[') && !line.endsWith(']')
      ? `close the table header: ${line.startsWith('[[') ? `${line}]]` : `${line}]`}`
      : TOML_HINTS.find(([pattern]) => pattern.test(reason))?.[1];
  return `TOML syntax error: ${reason}${near}${hint === undefined ? '' : `; ${hint}`}`;
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
      problems.push({
        source: `${source}:${error.line}:${error.column}`,
        path: '',
        message: tomlSyntaxMessage(error, text),
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
