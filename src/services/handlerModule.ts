import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../domain/errors.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import { TemplateError } from '../domain/template/templateError.ts';
import type { TemplateProblem } from '../domain/template/templateError.ts';
import { TemplateDefinitions } from '../domain/template/templateLoader.ts';
import { isStepHandlerClass } from '../worker/handlerApi.ts';
import type { StepHandlerDefinition } from '../worker/handlerApi.ts';
import { HandlerRegistry } from '../worker/handlerRegistry.ts';
import { isWorkflow } from '../worker/workflow.ts';
import type { Workflow } from '../worker/workflow.ts';

/** What a handlers module provides: handlers, and workflows (each a template and its steps' handlers). */
export interface HandlerModule {
  /** Every handler, the workflows' step handlers included. */
  handlers: StepHandlerDefinition[];
  /** One per exported workflow, in export order. */
  workflowTemplates: TaskTemplate[];
}

type AnyWorkflow = Workflow<unknown, unknown, unknown>;

function isDefinition(value: unknown): value is StepHandlerDefinition {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { run?: unknown }).run === 'function'
  );
}

/** A HandlerRegistry, by shape: one from another copy of Tasker fails `instanceof HandlerRegistry`. */
function isRegistry(value: unknown): value is Pick<HandlerRegistry, 'names' | 'get'> {
  return (
    value instanceof HandlerRegistry ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as { names?: unknown }).names === 'function' &&
      typeof (value as { get?: unknown }).get === 'function' &&
      typeof (value as { register?: unknown }).register === 'function')
  );
}

function collect(
  value: unknown,
  into: Map<string, StepHandlerDefinition>,
  workflows: Set<AnyWorkflow>,
): boolean {
  if (isWorkflow(value)) {
    workflows.add(value);
    return true;
  }
  if (isRegistry(value)) {
    for (const name of value.names()) {
      const handler = value.get(name);
      if (handler !== undefined) into.set(name, handler);
    }
    return true;
  }
  // A StepHandler subclass (not an instance), of this or another copy of Tasker: instantiated with no arguments.
  if (isStepHandlerClass(value)) {
    const handler = new value();
    into.set(handler.name, handler);
    return true;
  }
  if (isDefinition(value)) {
    into.set(value.name, value);
    return true;
  }
  if (Array.isArray(value)) {
    let found = false;
    for (const item of value) found = collect(item, into, workflows) || found;
    return found;
  }
  return false;
}

/**
 * Loads step handlers and workflows from a module (TypeScript or JavaScript; TypeScript runs without a build
 * step because the `tasker` bin registers tsx). Accepted shapes: a default export or a `handlers` export
 * holding an array of handlers or a HandlerRegistry; otherwise every exported handler (defineHandler results,
 * StepHandler subclasses and instances, arrays of them) is taken. Workflows (`workflow(...)`) are taken
 * wherever they are exported: directly, in arrays, or as the default export.
 * @throws ValidationError TASKER_HANDLERS_MODULE_INVALID when the file is missing, fails to load, or exports
 *   no handler and no workflow; TemplateError when a workflow is invalid or two define the same template
 */
export async function loadWorkerModule(path: string, cwd: string = process.cwd()): Promise<HandlerModule> {
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  if (!existsSync(file)) {
    throw new ValidationError(
      'TASKER_HANDLERS_MODULE_INVALID',
      `handlers module ${path} does not exist (resolved to ${file}); pass --handlers <file>, set ` +
        'TASKER_HANDLERS_MODULE, or set [worker] handlers_module',
    );
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const message = (error as Error).message;
    // A .ts/.js file outside an ESM package is loaded as CommonJS, which cannot import Tasker (ESM).
    const hint = /require\(\) ES Module|ERR_REQUIRE_ESM|Cannot use import statement/.test(message)
      ? '; handler modules are ES modules: add "type": "module" to the package.json next to it, or name it .mts/.mjs'
      : '';
    throw new ValidationError(
      'TASKER_HANDLERS_MODULE_INVALID',
      `handlers module ${path} failed to load: ${message}${hint}`,
      { cause: error },
    );
  }
  const found = new Map<string, StepHandlerDefinition>();
  const workflows = new Set<AnyWorkflow>();
  const preferred = exports.default ?? exports.handlers;
  if (preferred === undefined || !collect(preferred, found, workflows)) {
    for (const value of Object.values(exports)) collect(value, found, workflows);
  } else {
    // A default export of handlers must not hide a workflow exported by name beside it.
    const ignored = new Map<string, StepHandlerDefinition>();
    for (const value of Object.values(exports)) collect(value, ignored, workflows);
  }
  if (found.size === 0 && workflows.size === 0) {
    throw new ValidationError(
      'TASKER_HANDLERS_MODULE_INVALID',
      `handlers module ${path} exports no step handler and no workflow; export default an array of handlers ` +
        'made with defineHandler(...) or StepHandler subclasses, or export workflows made with workflow(...)',
    );
  }
  const workflowTemplates = combineTemplates(
    [...workflows].map((flow) => ({ template: flow.template(), source: `workflow ${flow.label}` })),
  );
  const handlers = [...found.values()];
  for (const flow of workflows) handlers.push(...flow.handlers());
  return { handlers, workflowTemplates };
}

/** A template and where it was defined (a YAML file or search path, or `workflow <label>`). */
export interface SourcedTemplate {
  template: TaskTemplate;
  source: string;
}

/**
 * Templates from several sources (YAML search paths, workflows in code), refusing two definitions of one
 * namespace, name and version, as the template loader refuses two YAML files defining one.
 * @throws TemplateError naming both definitions of each template defined twice
 */
export function combineTemplates(sourced: readonly SourcedTemplate[]): TaskTemplate[] {
  const problems: TemplateProblem[] = [];
  const definitions = new TemplateDefinitions();
  const templates: TaskTemplate[] = [];
  for (const { template, source } of sourced) {
    if (definitions.add(template, source, problems)) templates.push(template);
  }
  if (problems.length > 0) throw new TemplateError(problems);
  return templates;
}
