/**
 * The workflows engine tests run: the example templates (examples/templates) with their handlers, and the
 * engine-test templates in test/fixtures/engine.
 */
import { fileURLToPath } from 'node:url';
import { loadTemplates } from '../../../src/domain/template/templateLoader.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';

const EXAMPLE_TEMPLATES_DIR = fileURLToPath(new URL('../../../examples/templates', import.meta.url));
const ENGINE_FIXTURES_DIR = fileURLToPath(new URL('../../fixtures/engine', import.meta.url));

let examples: TaskTemplate[] | undefined;
let fixtures: TaskTemplate[] | undefined;

/** Every template in examples/templates. */
export function exampleTemplates(): TaskTemplate[] {
  examples ??= loadTemplates([EXAMPLE_TEMPLATES_DIR]).templates;
  return examples;
}

/** Every template in test/fixtures/engine. */
export function engineFixtureTemplates(): TaskTemplate[] {
  fixtures ??= loadTemplates([ENGINE_FIXTURES_DIR]).templates;
  return fixtures;
}

/** Templates of one namespace, from the examples and the engine fixtures. */
export function templatesInNamespace(namespace: string): TaskTemplate[] {
  return [...exampleTemplates(), ...engineFixtureTemplates()].filter((t) => t.namespace === namespace);
}

/** One template by name, from the examples and the engine fixtures. */
export function templateNamed(name: string): TaskTemplate {
  const found = [...exampleTemplates(), ...engineFixtureTemplates()].find((t) => t.name === name);
  if (found === undefined) throw new Error(`no example or engine fixture template is named "${name}"`);
  return found;
}

/** The request fields that address a template: `{ namespace, name, version }`. */
export function requestFor(
  template: TaskTemplate,
  context: Record<string, unknown> = {},
): { namespace: string; name: string; version: string; context: Record<string, unknown> } {
  return { namespace: template.namespace, name: template.name, version: template.version, context };
}
