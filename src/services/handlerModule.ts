import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../domain/errors.ts';
import { StepHandler } from '../worker/handlerApi.ts';
import type { StepHandlerDefinition } from '../worker/handlerApi.ts';
import { HandlerRegistry } from '../worker/handlerRegistry.ts';

function isDefinition(value: unknown): value is StepHandlerDefinition {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { run?: unknown }).run === 'function'
  );
}

/** A StepHandler subclass (not an instance): instantiated with no arguments. */
function isHandlerClass(value: unknown): value is new () => StepHandler {
  return typeof value === 'function' && value.prototype instanceof StepHandler;
}

function collect(value: unknown, into: Map<string, StepHandlerDefinition>): boolean {
  if (value instanceof HandlerRegistry) {
    for (const name of value.names()) {
      const handler = value.get(name);
      if (handler !== undefined) into.set(name, handler);
    }
    return true;
  }
  if (isHandlerClass(value)) {
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
    for (const item of value) found = collect(item, into) || found;
    return found;
  }
  return false;
}

/**
 * Loads step handlers from a module (TypeScript or JavaScript; TypeScript runs without a build step because
 * the `tasker` bin registers tsx). Accepted shapes: a default export or a `handlers` export holding an array
 * of handlers or a HandlerRegistry; otherwise every exported handler (defineHandler results, StepHandler
 * subclasses and instances, arrays of them) is taken.
 * @throws ValidationError TASKER_HANDLERS_MODULE_INVALID when the file is missing, fails to load, or exports
 *   no handler
 */
export async function loadHandlerModule(
  path: string,
  cwd: string = process.cwd(),
): Promise<StepHandlerDefinition[]> {
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
  const preferred = exports.default ?? exports.handlers;
  if (preferred === undefined || !collect(preferred, found)) {
    for (const value of Object.values(exports)) collect(value, found);
  }
  if (found.size === 0) {
    throw new ValidationError(
      'TASKER_HANDLERS_MODULE_INVALID',
      `handlers module ${path} exports no step handler; export default an array of handlers made with ` +
        'defineHandler(...) or StepHandler subclasses',
    );
  }
  return [...found.values()];
}
