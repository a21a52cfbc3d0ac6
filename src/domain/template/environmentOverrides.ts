/**
 * `environments: {<env>: {steps: [{name: <step> | ALL, handler: {initialization}, timeout_seconds, retry}]}}`.
 * Every environment is checked whichever one is selected, so a broken production override fails in
 * development too. Applied in listed order: `handler.initialization` is deep-merged into the step's,
 * `timeout_seconds` and `retry` replace the step's (a `retry` block replaces the whole policy, its left-out
 * keys taking the defaults, as in tasker-core).
 */
import type { RetryPolicy, StepTemplate } from './taskTemplate.ts';
import {
  checkKeys,
  isMapping,
  readInitialization,
  readMapping,
  readRetry,
  readString,
  readTimeout,
} from './templateFields.ts';
import type { Mapping } from './templateFields.ts';
import { closestMatch } from './suggest.ts';
import type { Path, TemplateSource } from './templateSource.ts';

/** Applies to every step. */
const ALL_STEPS = 'ALL';

export interface StepOverride {
  /** A step name or `ALL`. */
  name: string;
  initialization?: Mapping;
  timeoutSeconds?: number | null;
  retry?: RetryPolicy;
}

/** Overrides by environment name; entries that are unusable are reported and left out. */
export function readEnvironments(
  source: TemplateSource,
  value: unknown,
  path: Path,
  stepNames: readonly string[],
): Map<string, StepOverride[]> {
  const environments = new Map<string, StepOverride[]>();
  const map = readMapping(
    source,
    value,
    path,
    'write environments: {production: {steps: [{name: ALL, timeout_seconds: 60}]}}',
  );
  if (map === undefined) return environments;
  for (const [environment, body] of Object.entries(map)) {
    const envPath = [...path, environment];
    const envMap = readMapping(source, body, envPath, `write ${environment}: {steps: [...]}`);
    if (envMap === undefined) {
      if (body === null || body === undefined) environments.set(environment, []);
      continue;
    }
    checkKeys(source, envMap, envPath, {
      allowed: ['steps'],
      unsupported: { task_handler: 'there are no task-level handlers; override steps instead' },
    });
    const overrides: StepOverride[] = [];
    const steps = envMap['steps'];
    if (steps !== undefined && steps !== null && !Array.isArray(steps)) {
      source.report(
        [...envPath, 'steps'],
        'must be a list of step overrides',
        `write steps: [{name: <step or ${ALL_STEPS}>, timeout_seconds: 60}]`,
      );
    }
    if (Array.isArray(steps)) {
      steps.forEach((entry: unknown, index) => {
        const override = readStepOverride(source, entry, [...envPath, 'steps', index], stepNames);
        if (override !== undefined) overrides.push(override);
      });
    }
    environments.set(environment, overrides);
  }
  return environments;
}

function readStepOverride(
  source: TemplateSource,
  entry: unknown,
  path: Path,
  stepNames: readonly string[],
): StepOverride | undefined {
  if (!isMapping(entry)) {
    source.report(
      path,
      'must be a mapping with name and the keys to override',
      `write {name: <step or ${ALL_STEPS}>, retry: {max_attempts: 5}}`,
    );
    return undefined;
  }
  checkKeys(source, entry, path, { allowed: ['name', 'handler', 'timeout_seconds', 'retry'] });
  let name: string | undefined;
  if (entry['name'] === undefined || entry['name'] === null) {
    source.report(
      [...path, 'name'],
      'required key "name" is missing',
      `add name: <step name>, or name: ${ALL_STEPS} for every step`,
    );
  } else {
    name = readString(source, entry['name'], [...path, 'name'], `write the step's name, or ${ALL_STEPS}`);
    if (name !== undefined && name !== ALL_STEPS && !stepNames.includes(name)) {
      const suggestion = closestMatch(name, stepNames);
      source.report(
        [...path, 'name'],
        `no step named "${name}" in this template`,
        suggestion === undefined
          ? `use one of ${[...stepNames, ALL_STEPS].join(', ')}`
          : `did you mean "${suggestion}"?`,
      );
      name = undefined;
    }
  }
  const override: StepOverride = { name: name ?? ALL_STEPS };
  const handler = readMapping(
    source,
    entry['handler'],
    [...path, 'handler'],
    'write handler: {initialization: {...}}',
  );
  if (handler !== undefined) {
    checkKeys(source, handler, [...path, 'handler'], {
      allowed: ['initialization'],
      unsupported: { callable: "an environment cannot swap a step's handler" },
    });
    if (handler['initialization'] !== undefined && handler['initialization'] !== null) {
      override.initialization = readInitialization(source, handler['initialization'], [
        ...path,
        'handler',
        'initialization',
      ]);
    }
  }
  if ('timeout_seconds' in entry) {
    override.timeoutSeconds = readTimeout(source, entry['timeout_seconds'], [...path, 'timeout_seconds']);
  }
  if (entry['retry'] !== undefined && entry['retry'] !== null) {
    override.retry = readRetry(source, entry['retry'], [...path, 'retry']);
  }
  return name === undefined ? undefined : override;
}

/** Objects merge key by key, recursively; anything else (lists included) replaces. */
function deepMerge(base: Mapping, patch: Mapping): Mapping {
  const merged: Mapping = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = Object.hasOwn(merged, key) ? merged[key] : undefined;
    // defineProperty, not assignment: a YAML key `__proto__` must stay a plain key.
    Object.defineProperty(merged, key, {
      value: isMapping(current) && isMapping(value) ? deepMerge(current, value) : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return merged;
}

export function applyStepOverrides(
  steps: readonly StepTemplate[],
  overrides: readonly StepOverride[],
): StepTemplate[] {
  return steps.map((original) => {
    let step = original;
    for (const override of overrides) {
      if (override.name !== ALL_STEPS && override.name !== step.name) continue;
      step = {
        ...step,
        handler: {
          ...step.handler,
          initialization:
            override.initialization === undefined
              ? step.handler.initialization
              : deepMerge(step.handler.initialization, override.initialization),
        },
        timeoutSeconds: override.timeoutSeconds === undefined ? step.timeoutSeconds : override.timeoutSeconds,
        retry: override.retry === undefined ? step.retry : { ...override.retry },
      };
    }
    return step;
  });
}
