/**
 * Task template YAML (reference §7, snake_case keys) to a validated `TaskTemplate` (camelCase, defaults
 * applied). Reports every problem in the file at once, each with its line and column, and throws them
 * together as one TemplateError.
 */
import { applyStepOverrides, readEnvironments } from './environmentOverrides.ts';
import { inputSchemaProblems } from './inputValidator.ts';
import { checkGraph, readStep } from './stepReader.ts';
import type { ReadStep } from './stepReader.ts';
import { IDENTITY_STRATEGIES } from './taskTemplate.ts';
import type { IdentityStrategy, LifecyclePolicy, TaskTemplate } from './taskTemplate.ts';
import { TemplateError } from './templateError.ts';
import type { TemplateProblem } from './templateError.ts';
import {
  checkKeys,
  describeFound,
  isMapping,
  MAX_NAMESPACE_LENGTH,
  MAX_TEMPLATE_NAME_LENGTH,
  readChoice,
  readIdentifier,
  readInteger,
  readMapping,
  readOptionalString,
} from './templateFields.ts';
import type { Mapping } from './templateFields.ts';
import { TemplateSource } from './templateSource.ts';
import type { TemplateValue } from './templateSource.ts';

export interface TemplateParseOptions {
  /** Apply `environments.<environment>` overrides (usually TASKER_ENV). @defaultValue no overrides */
  environment?: string;
}

const SEMVER = /^\d+\.\d+\.\d+([-+].*)?$/;

const TOP_LEVEL_KEYS = {
  allowed: [
    'name',
    'namespace_name',
    'version',
    'description',
    'metadata',
    'input_schema',
    'identity_strategy',
    'steps',
    'lifecycle',
    'environments',
  ],
  unsupported: {
    system_dependencies: 'external systems are not modelled; record them under metadata instead',
    domain_events: 'domain events are not implemented yet',
  },
} as const;

const LIFECYCLE_KEYS = {
  max_duration_minutes: 'maxDurationMinutes',
  max_waiting_for_dependencies_minutes: 'maxWaitingForDependenciesMinutes',
  max_waiting_for_retry_minutes: 'maxWaitingForRetryMinutes',
  max_steps_in_process_minutes: 'maxStepsInProcessMinutes',
} as const satisfies Record<string, keyof LifecyclePolicy>;

function readVersion(source: TemplateSource, value: unknown): string | undefined {
  if (value === undefined || value === null) {
    source.report(['version'], 'required key "version" is missing', 'add version: 1.0.0');
    return undefined;
  }
  if (typeof value === 'string' && SEMVER.test(value)) return value;
  const asNumber = typeof value === 'number' ? ' (YAML read it as a number)' : '';
  source.report(
    ['version'],
    `must be a semantic version major.minor.patch such as 1.0.0, found ${describeFound(value)}${asNumber}`,
    'write three numbers separated by dots, e.g. version: 1.0.0 (a pre-release or build suffix may follow: 1.0.0-beta.1)',
  );
  return undefined;
}

function readLifecycle(source: TemplateSource, value: unknown): LifecyclePolicy {
  const lifecycle: LifecyclePolicy = {
    maxDurationMinutes: null,
    maxWaitingForDependenciesMinutes: null,
    maxWaitingForRetryMinutes: null,
    maxStepsInProcessMinutes: null,
  };
  const map = readMapping(source, value, ['lifecycle'], 'write lifecycle: {max_duration_minutes: 120}');
  if (map === undefined) return lifecycle;
  checkKeys(source, map, ['lifecycle'], {
    allowed: Object.keys(LIFECYCLE_KEYS),
    unsupported: {
      staleness_action:
        'per-template staleness actions are not implemented; the orchestration settings apply',
      auto_fail_on_timeout:
        'per-template staleness actions are not implemented; the orchestration settings apply',
      auto_dlq_on_timeout:
        'per-template staleness actions are not implemented; the orchestration settings apply',
    },
  });
  for (const [key, field] of Object.entries(LIFECYCLE_KEYS)) {
    const minutes = map[key];
    if (minutes === undefined || minutes === null) continue;
    lifecycle[field] =
      readInteger(
        source,
        minutes,
        ['lifecycle', key],
        { min: 1 },
        'whole minutes, at least 1; leave the key out to use the orchestration default',
      ) ?? null;
  }
  return lifecycle;
}

function readInputSchema(source: TemplateSource, value: unknown): Mapping | null {
  if (value === undefined || value === null) return null;
  if (!isMapping(value)) {
    source.report(
      ['input_schema'],
      `must be a JSON Schema object (a mapping), found ${describeFound(value)}`,
      'write input_schema: {type: object, required: [order_id]}',
    );
    return null;
  }
  for (const problem of inputSchemaProblems(value)) {
    source.report(['input_schema', ...problem.path], problem.message, problem.hint);
  }
  return value;
}

function byPosition(a: TemplateProblem, b: TemplateProblem): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/**
 * Parses and validates one template file.
 * @param file named in every problem (use the path the user knows, e.g. relative to the search path)
 * @throws TemplateError (TASKER_INVALID_TEMPLATE) listing every problem found
 */
export function parseTaskTemplate(
  text: string,
  file: string,
  options: TemplateParseOptions = {},
): TaskTemplate {
  return readTaskTemplate(new TemplateSource(file, text), options);
}

/**
 * Validates a template given as data in the YAML form's shape (snake_case keys, as `yaml` would read the
 * file): the same checks, defaults and messages as `parseTaskTemplate`, without lines and columns. Workflows
 * defined in TypeScript (src/worker/workflow.ts) build this shape so that they become exactly the template
 * the equivalent YAML file would.
 * @param file names the template in every problem, e.g. `workflow payments/refund@1.0.0`
 * @throws TemplateError (TASKER_INVALID_TEMPLATE) listing every problem found
 */
export function validateTemplateDocument(
  document: unknown,
  file: string,
  describePath?: TemplateValue['describePath'],
): TaskTemplate {
  return readTaskTemplate(
    new TemplateSource(file, { value: document, ...(describePath !== undefined && { describePath }) }),
    {},
  );
}

function readTaskTemplate(source: TemplateSource, options: TemplateParseOptions): TaskTemplate {
  const fail = (): never => {
    throw new TemplateError([...source.problems].sort(byPosition), { cause: source.yamlError });
  };
  if (source.problems.length > 0) fail();
  const root = source.value;
  if (!isMapping(root)) {
    source.report(
      [],
      `a task template must be a YAML mapping with name, namespace_name, version and steps; found ${root === null || root === undefined ? 'an empty file' : describeFound(root)}`,
      'write at least name: process_refund, namespace_name: payments, version: 1.0.0 and steps: [{name: first_step, handler: {callable: MyHandler}}]',
    );
    return fail();
  }
  checkKeys(source, root, [], TOP_LEVEL_KEYS);
  const name = readIdentifier(source, root['name'], ['name'], {
    max: MAX_TEMPLATE_NAME_LENGTH,
    example: 'process_refund',
  });
  const namespace = readIdentifier(source, root['namespace_name'], ['namespace_name'], {
    max: MAX_NAMESPACE_LENGTH,
    example: 'payments',
    why: `the worker queue worker_<namespace>_queue must fit PGMQ's 47-character queue name limit, which leaves ${MAX_NAMESPACE_LENGTH} for the namespace`,
  });
  const version = readVersion(source, root['version']);
  const identityStrategy: IdentityStrategy =
    root['identity_strategy'] === undefined || root['identity_strategy'] === null
      ? 'strict'
      : (readChoice(source, root['identity_strategy'], ['identity_strategy'], IDENTITY_STRATEGIES) ??
        'strict');

  const steps: ReadStep[] = [];
  const rawSteps = root['steps'];
  if (rawSteps === undefined || rawSteps === null) {
    source.report(
      ['steps'],
      'required key "steps" is missing',
      'add steps: [{name: first_step, handler: {callable: MyHandler}}]',
    );
  } else if (!Array.isArray(rawSteps)) {
    source.report(
      ['steps'],
      `must be a list of steps, found ${describeFound(rawSteps)}`,
      'write each step as a list item starting with "- name:"',
    );
  } else if (rawSteps.length === 0) {
    source.report(
      ['steps'],
      'must list at least one step, found an empty list',
      'add steps: [{name: first_step, handler: {callable: MyHandler}}]',
    );
  } else {
    rawSteps.forEach((entry: unknown, index) => {
      const step = readStep(source, entry, index);
      if (step !== undefined) steps.push(step);
    });
    checkGraph(source, steps);
  }

  const stepNames = [...new Set(steps.flatMap((step) => (step.name === undefined ? [] : [step.name])))];
  const environments = readEnvironments(source, root['environments'], ['environments'], stepNames);
  const template: TaskTemplate = {
    name: name ?? '',
    namespace: namespace ?? '',
    version: version ?? '',
    description: readOptionalString(source, root['description'], ['description']),
    inputSchema: readInputSchema(source, root['input_schema']),
    identityStrategy,
    steps: steps.map((step) => step.template),
    lifecycle: readLifecycle(source, root['lifecycle']),
    metadata:
      readMapping(
        source,
        root['metadata'],
        ['metadata'],
        'write metadata as a mapping, e.g. metadata: {author: payments-team}',
      ) ?? {},
  };
  if (source.problems.length > 0) fail();
  const overrides = options.environment === undefined ? undefined : environments.get(options.environment);
  return overrides === undefined
    ? template
    : { ...template, steps: applyStepOverrides(template.steps, overrides) };
}
