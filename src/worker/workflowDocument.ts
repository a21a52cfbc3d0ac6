/**
 * A workflow defined in TypeScript, written out as the YAML form of its template (snake_case keys, exactly as
 * `yaml` reads a template file), so that the template parser validates it with the checks, defaults and
 * messages YAML files get. Problems are placed with the names the code uses: `step("charge").retry.maxAttempts`
 * rather than `steps[1].retry.max_attempts`.
 */
import type { Path } from '../domain/template/templateSource.ts';

/** What one `flow.step(...)` call contributes to the template. */
export interface StepDeclaration {
  name: string;
  description: string | undefined;
  callable: string;
  config: Readonly<Record<string, unknown>> | undefined;
  /** Parent step names, in the order the step lists them; undefined when it lists none. */
  parents: readonly string[] | undefined;
  retry: Readonly<Record<string, unknown>> | undefined;
  timeoutSeconds: number | undefined;
}

/** What `workflow({...})` contributes, with the input already turned into a JSON Schema. */
export interface WorkflowDeclaration {
  namespace: string;
  name: string;
  version: string;
  description: string | undefined;
  inputSchema: Readonly<Record<string, unknown>> | undefined;
  identity: string | undefined;
  lifecycle: Readonly<Record<string, unknown>> | undefined;
  metadata: Readonly<Record<string, unknown>> | undefined;
  steps: readonly StepDeclaration[];
}

const snakeCase = (key: string): string => key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
const camelCase = (key: string): string =>
  key.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());

/** `{ maxAttempts: 3 }` as the YAML writes it, `{ max_attempts: 3 }`; a misspelt key stays for the parser to report. */
function snakeKeys(
  value: Readonly<Record<string, unknown>> | undefined,
): Record<string, unknown> | undefined {
  if (value === undefined || typeof value !== 'object' || value === null || Array.isArray(value))
    return value;
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [snakeCase(key), entry]));
}

/** Only the keys the code set: the parser's defaults then apply exactly as they do to a YAML file. */
function defined(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined));
}

export function templateDocument(declaration: WorkflowDeclaration): Record<string, unknown> {
  return defined({
    name: declaration.name,
    namespace_name: declaration.namespace,
    version: declaration.version,
    description: declaration.description,
    metadata: declaration.metadata,
    input_schema: declaration.inputSchema,
    identity_strategy: declaration.identity,
    lifecycle: snakeKeys(declaration.lifecycle),
    steps: declaration.steps.map((step) =>
      defined({
        name: step.name,
        description: step.description,
        handler: defined({ callable: step.callable, initialization: step.config }),
        dependencies: step.parents,
        retry: snakeKeys(step.retry),
        timeout_seconds: step.timeoutSeconds,
      }),
    ),
  });
}

/** The workflow options' names for the template's top-level YAML keys. */
const WORKFLOW_KEYS: Readonly<Record<string, string>> = {
  namespace_name: 'namespace',
  input_schema: 'input',
  identity_strategy: 'identity',
};

/** The step options' names for a step's YAML keys. */
const STEP_KEYS: Readonly<Record<string, string>> = {
  dependencies: 'parents',
  depends_on: 'parents',
  timeout_seconds: 'timeoutSeconds',
};

/** Keys below these hold the user's own data (a JSON Schema, metadata, step config) and are shown as written. */
const USER_DATA: ReadonlySet<string> = new Set(['input_schema', 'metadata', 'initialization']);

function appendKey(text: string, key: string | number): string {
  if (typeof key === 'number') return `${text}[${key}]`;
  if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return `${text}[${JSON.stringify(key)}]`;
  return text === '' ? key : `${text}.${key}`;
}

/**
 * A problem's place in the code's words: `steps[1].retry.max_attempts` becomes `step("charge").retry.maxAttempts`,
 * `steps[0].handler.initialization.x` becomes `step("fetch").config.x`, `namespace_name` becomes `namespace`.
 */
export function describeWorkflowPath(stepNames: readonly string[]): (path: Path) => string {
  return (path) => {
    let text = '';
    let userData = false;
    for (let index = 0; index < path.length; index++) {
      const key = path[index];
      if (key === undefined) break;
      if (userData || typeof key === 'number') {
        text = appendKey(text, key);
        continue;
      }
      const next = path[index + 1];
      if (index === 0 && key === 'steps' && typeof next === 'number') {
        text = `step(${JSON.stringify(stepNames[next] ?? `#${next}`)})`;
        index++;
        continue;
      }
      const inStep = path[0] === 'steps' && index === 2;
      if (inStep && key === 'handler') {
        // handler.callable is the `handler` option; handler.initialization is `config`.
        const inner = path[index + 1];
        text = appendKey(text, inner === 'initialization' ? 'config' : 'handler');
        userData = inner === 'initialization';
        index++;
        continue;
      }
      const renamed =
        (index === 0 ? WORKFLOW_KEYS[key] : inStep ? STEP_KEYS[key] : undefined) ?? camelCase(key);
      text = appendKey(text, renamed);
      userData = USER_DATA.has(key);
    }
    return text;
  };
}
