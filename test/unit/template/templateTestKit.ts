import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { TemplateError } from '../../../src/domain/template/templateError.ts';
import type { TemplateProblem } from '../../../src/domain/template/templateError.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import type { TemplateParseOptions } from '../../../src/domain/template/templateParser.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';

/** Shared by the template tests: fixture files, temporary folders (removed after each test), error capture. */

export const TEMPLATE_FIXTURES = fileURLToPath(new URL('../../fixtures/templates/', import.meta.url));

export function fixtureText(relative: string): string {
  return readFileSync(join(TEMPLATE_FIXTURES, relative), 'utf8');
}

/** Parses `test/fixtures/templates/<relative>`, naming it `<relative>` in problems. */
export function parseFixture(relative: string, options?: TemplateParseOptions): TaskTemplate {
  return parseTaskTemplate(fixtureText(relative), relative, options);
}

/** The TemplateError `run` must throw. */
export function templateError(run: () => unknown): TemplateError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TemplateError);
    return error as TemplateError;
  }
  throw new Error('expected a TemplateError, nothing was thrown');
}

export function problemsOf(run: () => unknown): readonly TemplateProblem[] {
  return templateError(run).problems;
}

/** A problem as `file:line:col path` (or `file path` when unplaced), for compact exact comparisons. */
export function placeOf(problem: TemplateProblem): string {
  const at = problem.line === null ? problem.file : `${problem.file}:${problem.line}:${problem.column}`;
  return `${at} ${problem.path}`;
}

/** The smallest valid template around `steps` (YAML lines, indented by two). */
export function minimalTemplate(
  extra = '',
  steps = '  - name: only_step\n    handler: {callable: Only}\n',
): string {
  return `name: minimal\nnamespace_name: tests\nversion: 1.0.0\n${extra}steps:\n${steps}`;
}

const temporary: string[] = [];
afterEach(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temporary folder holding `files` (relative path -> text); removed after the test. */
export function tempTree(files: Readonly<Record<string, string>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tasker-templates-'));
  temporary.push(dir);
  for (const [relative, text] of Object.entries(files)) {
    const path = join(dir, relative);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
  return dir;
}

/** The one problem `run` must report. */
export function onlyProblem(run: () => unknown): TemplateProblem {
  const problems = problemsOf(run);
  expect(problems.map(placeOf)).toHaveLength(1);
  const [problem] = problems;
  if (problem === undefined) throw new Error('unreachable: one problem was just checked');
  return problem;
}
