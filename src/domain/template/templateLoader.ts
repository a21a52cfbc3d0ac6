/**
 * Reads task templates from search paths. The one module under src/domain that does I/O (it reads files);
 * everything it checks is done by the pure parser.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { delimiter, extname, join } from 'node:path';
import type { TaskTemplate } from './taskTemplate.ts';
import { TemplateError } from './templateError.ts';
import type { TemplateProblem } from './templateError.ts';
import { parseTaskTemplate } from './templateParser.ts';
import type { TemplateParseOptions } from './templateParser.ts';

const TEMPLATE_PATH_VARIABLE = 'TASKER_TEMPLATE_PATH';
const TEMPLATE_EXTENSIONS: readonly string[] = ['.yml', '.yaml'];

export interface LoadedTemplates {
  /** In file order (search path order, then path name order within a folder). */
  templates: TaskTemplate[];
  /** Every file read, as search path + relative path. */
  files: string[];
}

/**
 * Where templates are read from: `TASKER_TEMPLATE_PATH` (folders or files separated by `:` like PATH, `;`
 * on Windows) when it names at least one, otherwise the configured paths.
 */
export function templateSearchPaths(
  env: Readonly<Record<string, string | undefined>> = process.env,
  configured: readonly string[] = [],
): string[] {
  const fromEnvironment = (env[TEMPLATE_PATH_VARIABLE] ?? '')
    .split(delimiter)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  return fromEnvironment.length > 0 ? fromEnvironment : [...configured];
}

function wholeFileProblem(file: string, message: string, hint: string): TemplateProblem {
  return { file, path: '', line: null, column: null, message, hint };
}

function statOrProblem(path: string, problems: TemplateProblem[]): Stats | undefined {
  try {
    return statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problems.push(
      code === 'ENOENT'
        ? wholeFileProblem(
            path,
            'template search path does not exist',
            `create it, or fix ${TEMPLATE_PATH_VARIABLE} or the configured template search paths`,
          )
        : wholeFileProblem(path, `cannot read: ${(error as Error).message}`, 'check the permissions'),
    );
    return undefined;
  }
}

/** Template files under `folder`, recursively, in name order; dot-files and dot-folders are skipped. */
function collectFolder(
  folder: string,
  files: string[],
  visited: Set<string>,
  problems: TemplateProblem[],
): void {
  // A symlink back up the tree must not loop forever.
  const real = realpathSync(folder);
  if (visited.has(real)) return;
  visited.add(real);
  let names: string[];
  try {
    names = readdirSync(folder).sort();
  } catch (error) {
    problems.push(
      wholeFileProblem(folder, `cannot list folder: ${(error as Error).message}`, 'check the permissions'),
    );
    return;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const path = join(folder, name);
    const stats = statOrProblem(path, problems);
    if (stats?.isDirectory() === true) collectFolder(path, files, visited, problems);
    else if (stats?.isFile() === true && TEMPLATE_EXTENSIONS.includes(extname(name).toLowerCase()))
      files.push(path);
  }
}

const GLOB = /[*?[\]{}]/;

function collectFiles(searchPaths: readonly string[], problems: TemplateProblem[]): string[] {
  const files: string[] = [];
  const visited = new Set<string>();
  for (const searchPath of searchPaths) {
    if (GLOB.test(searchPath)) {
      const folder = searchPath.slice(0, searchPath.search(GLOB)).replace(/[/\\][^/\\]*$/, '') || '.';
      problems.push(
        wholeFileProblem(
          searchPath,
          'template search paths are files or folders, not glob patterns',
          `use the folder ${folder}: every .yml and .yaml file under it is read, subfolders included`,
        ),
      );
      continue;
    }
    const stats = statOrProblem(searchPath, problems);
    if (stats?.isDirectory() === true) collectFolder(searchPath, files, visited, problems);
    else if (stats !== undefined) files.push(searchPath);
  }
  // The same file reached through two search paths (a folder and its subfolder) is read once.
  const seen = new Set<string>();
  return files.filter((file) => {
    const real = realpathSync(file);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

/**
 * The rule that a namespace, name and version identify one template, wherever templates come from (YAML files,
 * workflows in code): remembers where each was defined and refuses a second definition.
 */
export class TemplateDefinitions {
  private readonly definedIn = new Map<string, string>();

  /**
   * Records `template` as defined in `source` (a file, or a description such as "workflow x@1.0.0"); a second
   * definition adds a problem naming both and answers false.
   */
  add(template: TaskTemplate, source: string, problems: TemplateProblem[]): boolean {
    const identity = `${template.namespace}/${template.name} version ${template.version}`;
    const first = this.definedIn.get(identity);
    if (first !== undefined) {
      problems.push(
        wholeFileProblem(
          source,
          `template ${identity} is also defined in ${first}; a namespace, name and version identify one template`,
          'give one of them a new version (or name), or remove one definition',
        ),
      );
      return false;
    }
    this.definedIn.set(identity, source);
    return true;
  }
}

/**
 * Reads and validates every template under the search paths (files, or folders read recursively for
 * `.yml`/`.yaml` files). Problems from every file are gathered before anything is returned.
 * @throws TemplateError (TASKER_INVALID_TEMPLATE) listing every problem in every file, a search path that
 * does not exist, and two files defining the same namespace, name and version
 */
export function loadTemplates(
  searchPaths: readonly string[],
  options: TemplateParseOptions = {},
): LoadedTemplates {
  const problems: TemplateProblem[] = [];
  const files = collectFiles(searchPaths, problems);
  const templates: TaskTemplate[] = [];
  const definitions = new TemplateDefinitions();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      problems.push(
        wholeFileProblem(file, `cannot read: ${(error as Error).message}`, 'check the permissions'),
      );
      continue;
    }
    let template: TaskTemplate;
    try {
      template = parseTaskTemplate(text, file, options);
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      problems.push(...error.problems);
      continue;
    }
    if (!definitions.add(template, file, problems)) continue;
    templates.push(template);
  }
  if (problems.length > 0) throw new TemplateError(problems);
  return { templates, files };
}
