/**
 * The `steps` list: each step read on its own, then checked as a graph (duplicate names, unknown, self and
 * repeated dependencies, cycles).
 */
import { findCycles } from './dag.ts';
import { closestMatch } from './suggest.ts';
import type { StepTemplate } from './taskTemplate.ts';
import {
  checkKeys,
  describeFound,
  isMapping,
  MAX_STEP_NAME_LENGTH,
  readIdentifier,
  readInitialization,
  readMapping,
  readOptionalString,
  readRetry,
  readString,
  readTimeout,
} from './templateFields.ts';
import type { Path, TemplateSource } from './templateSource.ts';

const STEP_KEYS = {
  allowed: [
    'name',
    'description',
    'handler',
    'dependencies',
    'depends_on',
    'retry',
    'timeout_seconds',
    'type',
    'step_type',
  ],
  unsupported: {
    publishes_events: 'domain events are not implemented yet',
    batch_config: 'batch steps are not implemented yet',
    result_schema: 'step results are not validated',
    composition: 'composed (grammar) handlers are not implemented',
    system_dependency: 'external systems are not modelled',
  },
} as const;

const HANDLER_KEYS = {
  allowed: ['callable', 'initialization'],
  unsupported: {
    method: 'handlers are looked up by callable only; register a handler per entry point',
    resolver: 'handlers are looked up by callable only',
  },
} as const;

/** What the parser knows of one step beyond its template: where its dependency names came from. */
export interface ReadStep {
  index: number;
  template: StepTemplate;
  name: string | undefined;
  dependencyKey: 'dependencies' | 'depends_on';
  /** The YAML list entries, strings or not, with their positions in the list. */
  dependencyEntries: unknown[];
}

export function readStep(source: TemplateSource, entry: unknown, index: number): ReadStep | undefined {
  const path = ['steps', index];
  if (!isMapping(entry)) {
    source.report(
      path,
      `each step must be a mapping with name and handler, found ${describeFound(entry)}`,
      'write - name: my_step\n      handler: {callable: MyHandler}',
    );
    return undefined;
  }
  checkKeys(source, entry, path, STEP_KEYS);
  const name = readIdentifier(source, entry['name'], [...path, 'name'], {
    max: MAX_STEP_NAME_LENGTH,
    example: 'validate_order',
  });
  const type = entry['type'] ?? entry['step_type'];
  if (type !== undefined && type !== null && type !== 'standard') {
    source.report(
      [...path, entry['type'] === undefined ? 'step_type' : 'type'],
      `step type ${describeFound(type)} is not supported by this version of Tasker: decision points, deferred convergence and batch steps are not implemented yet`,
      'remove the key (every step is a standard step)',
    );
  }
  const handler = readHandler(source, entry['handler'], [...path, 'handler']);
  let dependencyKey: ReadStep['dependencyKey'] = 'dependencies';
  if (entry['depends_on'] !== undefined) {
    if (entry['dependencies'] !== undefined) {
      source.report(
        [...path, 'depends_on'],
        'dependencies and depends_on are two names for one list; this step has both',
        'keep one: move these names into dependencies and remove depends_on',
        'key',
      );
    } else {
      dependencyKey = 'depends_on';
    }
  }
  const dependencyEntries = readDependencyList(source, entry[dependencyKey], [...path, dependencyKey]);
  return {
    index,
    name,
    dependencyKey,
    dependencyEntries,
    template: {
      name: name ?? '',
      description: readOptionalString(source, entry['description'], [...path, 'description']),
      handler,
      dependencies: dependencyEntries.filter((d): d is string => typeof d === 'string'),
      retry: readRetry(source, entry['retry'], [...path, 'retry']),
      timeoutSeconds: readTimeout(source, entry['timeout_seconds'], [...path, 'timeout_seconds']),
    },
  };
}

function readHandler(source: TemplateSource, value: unknown, path: Path): StepTemplate['handler'] {
  const example = 'handler: {callable: Payments.Charge}';
  if (value === undefined || value === null) {
    source.report([...path, 'callable'], 'required key "handler.callable" is missing', `add ${example}`);
    return { callable: '', initialization: {} };
  }
  const map = readMapping(
    source,
    value,
    path,
    typeof value === 'string' ? `write handler: {callable: ${value}}` : `write ${example}`,
  );
  if (map === undefined) return { callable: '', initialization: {} };
  checkKeys(source, map, path, HANDLER_KEYS);
  let callable = '';
  if (map['callable'] === undefined || map['callable'] === null) {
    source.report(
      [...path, 'callable'],
      'required key "callable" is missing',
      'add callable: <the name the worker registered the handler under>, e.g. callable: Payments.Charge',
    );
  } else {
    const text = readString(source, map['callable'], [...path, 'callable'], 'write the handler name as text');
    if (text !== undefined && text.trim() === '') {
      source.report(
        [...path, 'callable'],
        'must not be empty',
        'write the name the worker registered the handler under',
      );
    } else if (text !== undefined) {
      callable = text;
    }
  }
  const initialization =
    map['initialization'] === undefined
      ? {}
      : readInitialization(source, map['initialization'], [...path, 'initialization']);
  return { callable, initialization };
}

function readDependencyList(source: TemplateSource, value: unknown, path: Path): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    source.report(
      path,
      `must be a list of step names, found ${describeFound(value)}`,
      typeof value === 'string'
        ? `write ${String(path[path.length - 1])}: [${value}]`
        : 'write dependencies: [step_a, step_b]',
    );
    return [];
  }
  value.forEach((entry: unknown, index) => {
    if (typeof entry !== 'string') {
      source.report(
        [...path, index],
        `must be a step name, found ${describeFound(entry)}`,
        'list step names as text',
      );
    }
  });
  return value as unknown[];
}

/** Duplicate names, unknown/self/repeated dependencies, and cycles: everything about the steps as a graph. */
export function checkGraph(source: TemplateSource, steps: readonly ReadStep[]): void {
  const firstIndex = new Map<string, number>();
  for (const step of steps) {
    if (step.name === undefined) continue;
    const first = firstIndex.get(step.name);
    if (first === undefined) {
      firstIndex.set(step.name, step.index);
    } else {
      source.report(
        ['steps', step.index, 'name'],
        `duplicate step name "${step.name}": steps[${first}] already has it`,
        'give every step a unique name (dependencies refer to steps by name)',
      );
    }
  }
  const names = [...firstIndex.keys()];
  for (const step of steps) {
    const seen = new Set<string>();
    step.dependencyEntries.forEach((dependency, index) => {
      if (typeof dependency !== 'string') return;
      const path = ['steps', step.index, step.dependencyKey, index];
      if (dependency === step.name) {
        source.report(
          path,
          `step "${dependency}" depends on itself`,
          'remove it: a step cannot wait for its own completion',
        );
      } else if (!firstIndex.has(dependency)) {
        const suggestion = closestMatch(dependency, names);
        source.report(
          path,
          `unknown step "${dependency}": no step in this template has that name`,
          suggestion === undefined
            ? `use one of the declared steps: ${names.join(', ')}`
            : `did you mean "${suggestion}"?`,
        );
      } else if (seen.has(dependency)) {
        source.report(path, `"${dependency}" is listed more than once`, 'remove the repeated entry');
      }
      seen.add(dependency);
    });
  }
  const graphSteps = steps.flatMap((step) =>
    step.name === undefined ? [] : [{ name: step.name, dependencies: step.template.dependencies }],
  );
  for (const cycle of findCycles(graphSteps)) {
    const [from, to] = cycle;
    const step = steps.find((s) => s.name === from);
    if (step === undefined || to === undefined) continue;
    source.report(
      ['steps', step.index, step.dependencyKey, step.dependencyEntries.indexOf(to)],
      `dependency cycle: ${cycle.join(' -> ')} ("x -> y" means x depends on y), so none of these steps can ever start`,
      'remove one of these dependencies so the steps form a DAG',
    );
  }
}
