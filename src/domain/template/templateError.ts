import { ValidationError } from '../errors.ts';

/** One mistake in a task template file: where it is, what is wrong, and how to fix it. */
export interface TemplateProblem {
  /** The file as it was named to the parser or loader. */
  file: string;
  /** Where in the template, e.g. `steps[2].retry.max_attempts`; empty for whole-file problems. */
  path: string;
  /** 1-based; null when the YAML library cannot place the problem (e.g. two files clash). */
  line: number | null;
  /** 1-based; null together with `line`. */
  column: number | null;
  /** What is wrong, naming the value found. */
  message: string;
  /** How to fix it. */
  hint: string;
}

/** `file:line:col: path: message`, then the hint on its own indented line. */
function formatTemplateProblem(problem: TemplateProblem): string {
  const location =
    problem.line === null ? problem.file : `${problem.file}:${problem.line}:${problem.column ?? 1}`;
  const where = problem.path === '' ? location : `${location}: ${problem.path}`;
  return `${where}: ${problem.message}\n    fix: ${problem.hint}`;
}

/**
 * Every problem found in one or more task template files, not only the first.
 * Code `TASKER_INVALID_TEMPLATE`; `problems` is also in `details.problems` for programs.
 */
export class TemplateError extends ValidationError {
  readonly problems: readonly TemplateProblem[];

  constructor(problems: readonly TemplateProblem[], options: { cause?: unknown } = {}) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(
      'TASKER_INVALID_TEMPLATE',
      `task templates have ${count}:\n${problems.map((p) => `  ${formatTemplateProblem(p)}`).join('\n')}`,
      { details: { problems }, cause: options.cause },
    );
    this.problems = problems;
  }
}
