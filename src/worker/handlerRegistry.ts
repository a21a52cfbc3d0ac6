import { ValidationError } from '../domain/errors.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import type { StepHandlerDefinition } from './handlerApi.ts';

/**
 * Handlers by the name templates use in `handler.callable`. A handlers module may export one, so it is public
 * API: `@public` keeps the dead-export check (`npm run knip`) from reporting it.
 * @public
 */
export class HandlerRegistry {
  private readonly handlers = new Map<string, StepHandlerDefinition>();

  constructor(handlers: Iterable<StepHandlerDefinition> = []) {
    for (const handler of handlers) this.register(handler);
  }

  register(handler: StepHandlerDefinition): this {
    if (this.handlers.has(handler.name)) {
      throw new ValidationError(
        'TASKER_INVALID_ARGUMENT',
        `two handlers are registered as "${handler.name}": names must be unique`,
      );
    }
    this.handlers.set(handler.name, handler);
    return this;
  }

  get(name: string): StepHandlerDefinition | undefined {
    return this.handlers.get(name);
  }

  names(): string[] {
    return [...this.handlers.keys()].sort();
  }

  /**
   * Every step of every template must have a handler here: a worker that would claim a step it cannot run
   * refuses to start instead.
   * @throws ValidationError TASKER_UNKNOWN_HANDLER naming each missing callable and the steps using it
   */
  assertCovers(templates: readonly TaskTemplate[]): void {
    const missing = new Map<string, string[]>();
    for (const template of templates) {
      for (const step of template.steps) {
        if (this.handlers.has(step.handler.callable)) continue;
        const users = missing.get(step.handler.callable) ?? [];
        users.push(`${template.namespace}/${template.name}@${template.version} step "${step.name}"`);
        missing.set(step.handler.callable, users);
      }
    }
    if (missing.size === 0) return;
    const lines = [...missing].map(([callable, users]) => `"${callable}" (used by ${users.join(', ')})`);
    throw new ValidationError(
      'TASKER_UNKNOWN_HANDLER',
      `no handler registered for ${lines.join('; ')}. Registered handlers: ${this.names().join(', ') || '(none)'}. ` +
        'Register them with defineHandler(name, fn) in the handler module, or fix handler.callable in the template.',
      { details: { missing: [...missing.keys()] } },
    );
  }
}
