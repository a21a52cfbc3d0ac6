import { describe, expect, it } from 'vitest';
import { TaskerError, ValidationError } from '../../../src/domain/errors.ts';
import { TemplateError } from '../../../src/domain/template/templateError.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import {
  minimalTemplate,
  onlyProblem,
  parseFixture,
  placeOf,
  problemsOf,
  templateError,
} from './templateTestKit.ts';

/** `[where (file:line:col path), what the message says, what the hint says]`, exactly the problems expected. */
type Expected = readonly [place: string, message: string, hint: string];

function expectProblems(fixture: string, expected: readonly Expected[]): void {
  const problems = problemsOf(() => parseFixture(`invalid/${fixture}`));
  expect(problems.map(placeOf)).toEqual(expected.map(([place]) => place));
  problems.forEach((problem, index) => {
    const [, message, hint] = expected[index] ?? ['', '', ''];
    expect(problem.file).toBe(`invalid/${fixture}`);
    expect(problem.message).toContain(message);
    expect(problem.hint).toContain(hint);
  });
}

const NAME_RULE = 'characters of lowercase letters, digits and underscores, not starting with a digit';
const MAX_ATTEMPTS_HINT = 'use 1 for a single run without retries';

describe('template problems, one kind per fixture', () => {
  it('a YAML syntax error, placed where the parser noticed it', () => {
    expectProblems('yaml_syntax.txt', [
      [
        'invalid/yaml_syntax.txt:8:3 ',
        'YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }',
        'check the indentation',
      ],
    ]);
  });

  it('a key given twice in one mapping', () => {
    expectProblems('duplicate_key.yaml', [
      [
        'invalid/duplicate_key.yaml:4:1 ',
        'YAML syntax error: Map keys must be unique',
        'remove one of the two entries',
      ],
    ]);
  });

  it('a document that is not a mapping, and an empty one', () => {
    expectProblems('not_a_mapping.yaml', [
      [
        'invalid/not_a_mapping.yaml:1:1 ',
        'must be a YAML mapping with name, namespace_name, version and steps; found a list',
        'write at least name:',
      ],
    ]);
    expectProblems('empty.yaml', [
      ['invalid/empty.yaml ', 'found an empty file', 'namespace_name: payments'],
    ]);
  });

  it('missing top-level keys, each reported at the mapping that lacks it', () => {
    expectProblems('missing_required.yaml', [
      [
        'invalid/missing_required.yaml:2:1 name',
        'required key "name" is missing',
        'add name: process_refund',
      ],
      [
        'invalid/missing_required.yaml:2:1 namespace_name',
        'required key "namespace_name" is missing',
        'add namespace_name: payments',
      ],
      [
        'invalid/missing_required.yaml:2:1 version',
        'required key "version" is missing',
        'add version: 1.0.0',
      ],
      [
        'invalid/missing_required.yaml:2:1 steps',
        'required key "steps" is missing',
        'add steps: [{name: first_step',
      ],
    ]);
  });

  it('missing step name, handler and handler.callable', () => {
    expectProblems('missing_step_keys.yaml', [
      ['invalid/missing_step_keys.yaml:5:5 steps[0].name', 'required key "name" is missing', 'add name:'],
      [
        'invalid/missing_step_keys.yaml:6:5 steps[1].handler.callable',
        'required key "handler.callable" is missing',
        'add handler: {callable:',
      ],
      [
        'invalid/missing_step_keys.yaml:9:7 steps[2].handler.callable',
        'required key "callable" is missing',
        'the name the worker registered the handler under',
      ],
    ]);
  });

  it('names: template and step charset, namespace length explained by the queue name limit', () => {
    expectProblems('bad_names.yaml', [
      [
        'invalid/bad_names.yaml:1:7 name',
        `must be 1-64 ${NAME_RULE}, found "Process-Refund"`,
        'rename it, e.g. name: process_refund',
      ],
      [
        'invalid/bad_names.yaml:2:17 namespace_name',
        `must be 1-34 ${NAME_RULE}, found "payments_and_refunds_for_europe_region" (38 characters): the worker queue worker_<namespace>_queue must fit PGMQ's 47-character queue name limit`,
        'rename it, e.g. namespace_name: payments_and_refunds_for_europe_re',
      ],
      [
        'invalid/bad_names.yaml:5:11 steps[0].name',
        `must be 1-128 ${NAME_RULE}, found "validate-refund"`,
        'e.g. name: validate_refund',
      ],
      [
        'invalid/bad_names.yaml:7:11 steps[1].name',
        `must be 1-128 ${NAME_RULE}, found "2nd_step"`,
        'e.g. name: _2nd_step',
      ],
    ]);
  });

  it('a version YAML reads as a number', () => {
    expectProblems('bad_version.yaml', [
      [
        'invalid/bad_version.yaml:3:10 version',
        'must be a semantic version major.minor.patch such as 1.0.0, found 1 (YAML read it as a number)',
        'e.g. version: 1.0.0',
      ],
    ]);
  });

  it('an empty steps list', () => {
    expectProblems('empty_steps.yaml', [
      [
        'invalid/empty_steps.yaml:4:8 steps',
        'must list at least one step, found an empty list',
        'add steps:',
      ],
    ]);
  });

  it('a duplicate step name, naming the first one', () => {
    expectProblems('duplicate_step.yaml', [
      [
        'invalid/duplicate_step.yaml:10:11 steps[2].name',
        'duplicate step name "charge_card": steps[0] already has it',
        'give every step a unique name',
      ],
    ]);
  });

  it('unknown dependencies: the closest step name when there is one, the declared steps otherwise', () => {
    expectProblems('unknown_dependency.yaml', [
      [
        'invalid/unknown_dependency.yaml:9:20 steps[1].dependencies[0]',
        'unknown step "validate_refnd"',
        'did you mean "validate_refund"?',
      ],
      [
        'invalid/unknown_dependency.yaml:12:36 steps[2].dependencies[1]',
        'unknown step "audit_everything"',
        'use one of the declared steps: validate_refund, reverse_charge, notify_customer',
      ],
    ]);
  });

  it('a step that depends on itself (through the depends_on alias)', () => {
    expectProblems('self_dependency.yaml', [
      [
        'invalid/self_dependency.yaml:9:35 steps[1].depends_on[1]',
        'step "reverse_charge" depends on itself',
        'remove it',
      ],
    ]);
  });

  it('a dependency listed twice', () => {
    expectProblems('duplicate_dependency.yaml', [
      [
        'invalid/duplicate_dependency.yaml:11:9 steps[1].dependencies[1]',
        '"validate_refund" is listed more than once',
        'remove the repeated entry',
      ],
    ]);
  });

  it('a dependency cycle, named in order from its earliest-declared step', () => {
    expectProblems('cycle.yaml', [
      [
        'invalid/cycle.yaml:9:27 steps[1].dependencies[1]',
        'dependency cycle: a -> c -> b -> a',
        'remove one of these dependencies',
      ],
    ]);
  });

  it('retry limits: attempts, backoff, base, cap, and the cap below the base', () => {
    expectProblems('retry.yaml', [
      [
        'invalid/retry.yaml:7:28 steps[0].retry.max_attempts',
        'must be a whole number from 1 to 100, found 0',
        MAX_ATTEMPTS_HINT,
      ],
      [
        'invalid/retry.yaml:10:28 steps[1].retry.max_attempts',
        'must be a whole number from 1 to 100, found 101',
        MAX_ATTEMPTS_HINT,
      ],
      [
        'invalid/retry.yaml:13:28 steps[2].retry.max_attempts',
        'must be a whole number from 1 to 100, found 2.5',
        MAX_ATTEMPTS_HINT,
      ],
      [
        'invalid/retry.yaml:16:23 steps[3].retry.backoff',
        'must be one of exponential, linear, fixed; found "exponentail"',
        'did you mean "exponential"?',
      ],
      [
        'invalid/retry.yaml:19:31 steps[4].retry.backoff_base_ms',
        'must be a whole number from 0 to 3600000, found -1',
        'at most 3600000 (one hour)',
      ],
      [
        'invalid/retry.yaml:22:31 steps[5].retry.backoff_base_ms',
        'must be a whole number from 0 to 3600000, found 3600001',
        'at most 3600000 (one hour)',
      ],
      [
        'invalid/retry.yaml:25:53 steps[6].retry.max_backoff_ms',
        'must be at least backoff_base_ms (5000), found 1000',
        'raise max_backoff_ms to 5000 or more',
      ],
      [
        'invalid/retry.yaml:28:31 steps[7].retry.backoff_base_ms',
        'must not exceed max_backoff_ms (30000, the default), found 60000',
        'also set max_backoff_ms to 60000 or more',
      ],
      [
        'invalid/retry.yaml:31:30 steps[8].retry.max_backoff_ms',
        'must be a whole number from 0 to 86400000, found 86400001',
        'at most 86400000 (one day)',
      ],
      [
        'invalid/retry.yaml:34:25 steps[9].retry.retryable',
        'must be true or false, found "no"',
        'without quotes',
      ],
    ]);
  });

  it('timeout_seconds outside 1..86400', () => {
    const hint = 'leave it out to use the worker default';
    expectProblems('timeout.yaml', [
      [
        'invalid/timeout.yaml:7:22 steps[0].timeout_seconds',
        'must be a whole number from 1 to 86400, found 0',
        hint,
      ],
      [
        'invalid/timeout.yaml:10:22 steps[1].timeout_seconds',
        'must be a whole number from 1 to 86400, found 86401',
        hint,
      ],
    ]);
  });

  it('an identity strategy that does not exist', () => {
    expectProblems('identity_strategy.yaml', [
      [
        'invalid/identity_strategy.yaml:4:20 identity_strategy',
        'must be one of strict, caller_provided, always_unique; found "caller-provided"',
        'did you mean "caller_provided"?',
      ],
    ]);
  });

  it('input_schema: invalid JSON Schema, placed at the bad keyword, with the Ajv text', () => {
    expectProblems('input_schema_invalid.yaml', [
      [
        'invalid/input_schema_invalid.yaml:7:21 input_schema.properties.amount.type',
        'input_schema is not a valid JSON Schema: must be equal to one of the allowed values: "array", "boolean"',
        'fix the schema keyword',
      ],
    ]);
  });

  it('input_schema: an unknown keyword fails to compile (Ajv strict mode)', () => {
    expectProblems('input_schema_keyword.yaml', [
      [
        'invalid/input_schema_keyword.yaml:5:3 input_schema',
        'input_schema does not compile: strict mode: unknown keyword: "requird"',
        'standard JSON Schema keywords',
      ],
    ]);
  });

  it('input_schema: must describe an object', () => {
    expectProblems('input_schema_not_object.yaml', [
      [
        'invalid/input_schema_not_object.yaml:5:9 input_schema.type',
        'the task context is a JSON object, so the schema must describe one: type must be "object" (or be left out), found "array"',
        'set type: object',
      ],
    ]);
  });

  it('lifecycle minutes that are not positive whole numbers', () => {
    const hint = 'whole minutes, at least 1';
    expectProblems('lifecycle.yaml', [
      [
        'invalid/lifecycle.yaml:5:25 lifecycle.max_duration_minutes',
        'must be a whole number of at least 1, found 0',
        hint,
      ],
      ['invalid/lifecycle.yaml:6:41 lifecycle.max_waiting_for_dependencies_minutes', 'found -5', hint],
      ['invalid/lifecycle.yaml:7:34 lifecycle.max_waiting_for_retry_minutes', 'found 1.5', hint],
      ['invalid/lifecycle.yaml:8:33 lifecycle.max_steps_in_process_minutes', 'found "60"', hint],
    ]);
  });

  it('environment overrides naming steps that do not exist', () => {
    expectProblems('environments_unknown_step.yaml', [
      [
        'invalid/environments_unknown_step.yaml:10:15 environments.production.steps[0].name',
        'no step named "reverse_charg" in this template',
        'did you mean "reverse_charge"?',
      ],
      [
        'invalid/environments_unknown_step.yaml:12:15 environments.production.steps[1].name',
        'no step named "send_fax"',
        'use one of reverse_charge, ALL',
      ],
    ]);
  });

  it('unknown keys with a did-you-mean, and tasker-core keys this Tasker does not support', () => {
    expectProblems('unknown_keys.yaml', [
      [
        'invalid/unknown_keys.yaml:4:1 retries',
        'unknown key "retries"',
        'remove it; keys allowed here: name, namespace_name, version',
      ],
      [
        'invalid/unknown_keys.yaml:7:41 steps[0].handler.method',
        '"method" is a tasker-core template key this version of Tasker does not support',
        'remove method',
      ],
      [
        'invalid/unknown_keys.yaml:8:5 steps[0].timeout',
        'unknown key "timeout"',
        'did you mean "timeout_seconds"?',
      ],
      [
        'invalid/unknown_keys.yaml:9:14 steps[0].retry.maxAttempts',
        'unknown key "maxAttempts"',
        'did you mean "max_attempts"?',
      ],
      [
        'invalid/unknown_keys.yaml:10:5 steps[0].publishes_events',
        'domain events are not implemented yet',
        'remove publishes_events',
      ],
    ]);
  });

  it('both dependencies and depends_on on one step', () => {
    expectProblems('depends_on_both.yaml', [
      [
        'invalid/depends_on_both.yaml:10:5 steps[1].depends_on',
        'dependencies and depends_on are two names for one list',
        'remove depends_on',
      ],
    ]);
  });
});

describe('all problems at once', () => {
  it('reports every problem of a file in file order, in one error', () => {
    expectProblems('all_problems.yaml', [
      ['invalid/all_problems.yaml:2:7 name', 'found "All Problems"', 'e.g. name: all_problems'],
      ['invalid/all_problems.yaml:4:10 version', 'found "one"', 'e.g. version: 1.0.0'],
      [
        'invalid/all_problems.yaml:5:20 identity_strategy',
        'found "sometimes"',
        'use one of strict, caller_provided, always_unique',
      ],
      [
        'invalid/all_problems.yaml:9:20 steps[0].dependencies[0]',
        'dependency cycle: fetch -> store -> fetch',
        'remove one of these dependencies',
      ],
      ['invalid/all_problems.yaml:10:28 steps[0].retry.max_attempts', 'found 0', MAX_ATTEMPTS_HINT],
      [
        'invalid/all_problems.yaml:13:27 steps[1].dependencies[1]',
        '"fetch" is listed more than once',
        'remove the repeated entry',
      ],
      ['invalid/all_problems.yaml:14:22 steps[1].timeout_seconds', 'found 100000', 'from 1 to 86400'],
      [
        'invalid/all_problems.yaml:15:5 steps[2].handler.callable',
        'required key "handler.callable" is missing',
        'add handler:',
      ],
      [
        'invalid/all_problems.yaml:16:20 steps[2].dependencies[0]',
        'unknown step "stroe"',
        'did you mean "store"?',
      ],
      ['invalid/all_problems.yaml:17:36 lifecycle.max_duration_minutes', 'found 0', 'whole minutes'],
    ]);
  });

  it('prints them as file:line:col: path: message with the fix on the next line', () => {
    const error = templateError(() => parseFixture('invalid/cycle.yaml'));
    expect(error.message).toBe(
      [
        'task templates have 1 problem:',
        '  invalid/cycle.yaml:9:27: steps[1].dependencies[1]: dependency cycle: a -> c -> b -> a ("x -> y" means x depends on y), so none of these steps can ever start',
        '    fix: remove one of these dependencies so the steps form a DAG',
      ].join('\n'),
    );
    const many = templateError(() => parseFixture('invalid/timeout.yaml'));
    expect(many.message.split('\n')[0]).toBe('task templates have 2 problems:');
    expect(many.message).toContain(
      '\n  invalid/timeout.yaml:10:22: steps[1].timeout_seconds: must be a whole number from 1 to 86400, found 86401\n',
    );
  });

  it('is a ValidationError with code TASKER_INVALID_TEMPLATE and the problems in details', () => {
    const error = templateError(() => parseFixture('invalid/duplicate_step.yaml'));
    expect(error).toBeInstanceOf(TemplateError);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(TaskerError);
    expect(error.name).toBe('TemplateError');
    expect(error.code).toBe('TASKER_INVALID_TEMPLATE');
    expect(error.details['problems']).toEqual(error.problems);
    expect(error.toJSON().code).toBe('TASKER_INVALID_TEMPLATE');
  });

  it('passes the YAML library error on as the cause of a syntax problem', () => {
    const error = templateError(() => parseFixture('invalid/yaml_syntax.txt'));
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as Error).name).toBe('YAMLParseError');
  });
});

describe('template problems: boundaries and other shapes', () => {
  it('rejects names one character past their limits: namespace 35, template 65, step 129', () => {
    const problems = problemsOf(() =>
      parseTaskTemplate(
        `name: ${'t'.repeat(65)}\nnamespace_name: ${'n'.repeat(35)}\nversion: 1.0.0\nsteps:\n  - name: ${'s'.repeat(129)}\n    handler: {callable: X}\n`,
        'long.yaml',
      ),
    );
    expect(problems.map((p) => [p.path, p.message.split(' characters')[0]])).toEqual([
      ['name', 'must be 1-64'],
      ['namespace_name', 'must be 1-34'],
      ['steps[0].name', 'must be 1-128'],
    ]);
    expect(problems[1]?.message).toContain('(35 characters)');
  });

  it('rejects a version that is text but not semver', () => {
    for (const version of ['v1.0.0', '"1.0"', '1.0.0.0', '"1.0.x"']) {
      const problem = onlyProblem(() =>
        parseTaskTemplate(minimalTemplate().replace('1.0.0', version), 'v.yaml'),
      );
      expect(problem.path).toBe('version');
      expect(problem.message).toMatch(
        /^must be a semantic version major\.minor\.patch such as 1\.0\.0, found "/,
      );
    }
  });

  it('places a problem about an empty value at its key', () => {
    const problem = onlyProblem(() =>
      parseTaskTemplate(minimalTemplate().replace('version: 1.0.0', 'version:'), 'e.yaml'),
    );
    expect(placeOf(problem)).toBe('e.yaml:3:1 version');
    expect(problem.message).toBe('required key "version" is missing');
  });

  it('rejects steps given as a mapping, and a step that is not a mapping', () => {
    const notList = onlyProblem(() =>
      parseTaskTemplate('name: a\nnamespace_name: b\nversion: 1.0.0\nsteps: {first: {}}\n', 'map.yaml'),
    );
    expect(placeOf(notList)).toBe('map.yaml:4:8 steps');
    expect(notList.message).toBe('must be a list of steps, found a mapping');
    const notMap = onlyProblem(() =>
      parseTaskTemplate(minimalTemplate('', '  - just_a_name\n'), 'item.yaml'),
    );
    expect(placeOf(notMap)).toBe('item.yaml:5:5 steps[0]');
    expect(notMap.message).toBe('each step must be a mapping with name and handler, found "just_a_name"');
  });

  it('rejects a dependencies value that is a single name instead of a list, suggesting the list', () => {
    const problem = onlyProblem(() =>
      parseTaskTemplate(
        minimalTemplate(
          '',
          '  - name: a\n    handler: {callable: A}\n  - name: b\n    handler: {callable: B}\n    dependencies: a\n',
        ),
        'deps.yaml',
      ),
    );
    expect(placeOf(problem)).toBe('deps.yaml:9:19 steps[1].dependencies');
    expect(problem.message).toBe('must be a list of step names, found "a"');
    expect(problem.hint).toBe('write dependencies: [a]');
  });

  it('rejects step types other than standard (decision points are not implemented)', () => {
    const problem = onlyProblem(() =>
      parseTaskTemplate(
        minimalTemplate('', '  - name: route\n    type: decision\n    handler: {callable: Route}\n'),
        't.yaml',
      ),
    );
    expect(placeOf(problem)).toBe('t.yaml:6:11 steps[0].type');
    expect(problem.message).toContain('step type "decision" is not supported');
  });

  it('checks every environment, not only the selected one', () => {
    const yaml = minimalTemplate(
      'environments:\n  production:\n    steps:\n      - {name: only_step, retry: {max_attempts: 0}, timeout_seconds: 0}\n',
    );
    const problems = problemsOf(() => parseTaskTemplate(yaml, 'env.yaml', { environment: 'development' }));
    expect(problems.map(placeOf)).toEqual([
      'env.yaml:7:49 environments.production.steps[0].retry.max_attempts',
      'env.yaml:7:70 environments.production.steps[0].timeout_seconds',
    ]);
  });

  it('rejects an input schema of an unsupported draft, and one that is not a mapping', () => {
    const draft = onlyProblem(() =>
      parseTaskTemplate(
        minimalTemplate('input_schema: {$schema: "http://json-schema.org/draft-04/schema#"}\n'),
        's.yaml',
      ),
    );
    expect(draft.path).toBe('input_schema.$schema');
    expect(draft.message).toBe('unsupported JSON Schema draft "http://json-schema.org/draft-04/schema#"');
    expect(draft.hint).toContain('http://json-schema.org/draft-07/schema#');
    const list = onlyProblem(() => parseTaskTemplate(minimalTemplate('input_schema: [a]\n'), 's.yaml'));
    expect(placeOf(list)).toBe('s.yaml:4:15 input_schema');
    expect(list.message).toBe('must be a JSON Schema object (a mapping), found a list');
  });

  it('accepts draft-07 input schemas as well as 2020-12', () => {
    const template = parseTaskTemplate(
      minimalTemplate(
        'input_schema: {$schema: "http://json-schema.org/draft-07/schema#", type: object, definitions: {id: {type: string}}, properties: {id: {$ref: "#/definitions/id"}}}\n',
      ),
      'd7.yaml',
    );
    expect(template.inputSchema?.['$schema']).toBe('http://json-schema.org/draft-07/schema#');
  });

  it('places a problem inside a merged (<<) block at the anchor it came from', () => {
    const yaml = minimalTemplate(
      '',
      `  - name: first
    handler: {callable: First}
    retry: &shared {max_attempts: 0}
  - name: second
    handler: {callable: Second}
    retry:
      <<: *shared
      backoff: fixed
`,
    );
    expect(problemsOf(() => parseTaskTemplate(yaml, 'merge.yaml')).map(placeOf)).toEqual([
      'merge.yaml:7:35 steps[0].retry.max_attempts',
      'merge.yaml:7:35 steps[1].retry.max_attempts',
    ]);
  });
});
