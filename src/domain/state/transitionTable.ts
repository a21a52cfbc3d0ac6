/**
 * The machinery shared by the task and step state machines: a transition table is plain data
 * (`from -> event -> to`), so the same object drives `transition()`, SQL CHECK constraints and docs.
 * A state machine here is deliberately only the table: guards that need data (attempt counts, whether
 * dependencies are met) belong to the caller, which then picks the event to fire.
 */
import { ValidationError } from '../errors.ts';

export type TransitionTable<S extends string, E extends string> = Readonly<
  Record<S, Readonly<Partial<Record<E, S>>>>
>;

export type TransitionResult<S extends string> =
  { readonly ok: true; readonly to: S } | { readonly ok: false; readonly reason: string };

/** One allowed edge of a table, flattened; handy for generating SQL and docs. */
export interface TransitionEdge<S extends string, E extends string> {
  readonly from: S;
  readonly event: E;
  readonly to: S;
}

export interface StateMachineDefinition<S extends string, E extends string> {
  /** `task` or `step`; used in messages only. */
  readonly machine: string;
  readonly states: readonly S[];
  readonly events: readonly E[];
  readonly terminal: readonly S[];
  readonly table: TransitionTable<S, E>;
}

/** Freezes the table and its rows so no caller can widen the allowed transitions at runtime. */
export function freezeTable<S extends string, E extends string>(
  table: Record<S, Partial<Record<E, S>>>,
): TransitionTable<S, E> {
  for (const row of Object.values<Partial<Record<E, S>>>(table)) {
    Object.freeze(row);
  }
  return Object.freeze(table);
}

function has(object: object, key: string): boolean {
  // Own keys only: a state or event named like an Object.prototype member must not match.
  return Object.hasOwn(object, key);
}

function describeEvents(events: readonly string[]): string {
  return events.length === 0 ? 'none' : events.join(', ');
}

export function eventsFrom<S extends string, E extends string>(
  definition: StateMachineDefinition<S, E>,
  from: S,
): E[] {
  if (!has(definition.table, from)) {
    return [];
  }
  const row = definition.table[from];
  return definition.events.filter((event) => has(row, event));
}

export function lookupTransition<S extends string, E extends string>(
  definition: StateMachineDefinition<S, E>,
  from: S,
  event: E,
): TransitionResult<S> {
  const { machine, table, terminal } = definition;
  if (!has(table, from)) {
    return {
      ok: false,
      reason: `unknown ${machine} state '${String(from)}'; known states: ${definition.states.join(', ')}`,
    };
  }
  if (!(definition.events as readonly string[]).includes(event)) {
    return {
      ok: false,
      reason: `unknown ${machine} event '${String(event)}'; known events: ${definition.events.join(', ')}`,
    };
  }
  const row = table[from];
  const to = has(row, event) ? row[event] : undefined;
  if (to === undefined) {
    const kind = terminal.includes(from) ? ' (terminal)' : '';
    return {
      ok: false,
      reason:
        `${machine} in state '${from}'${kind} does not accept event '${event}'; ` +
        `events accepted in '${from}': ${describeEvents(eventsFrom(definition, from))}`,
    };
  }
  return { ok: true, to };
}

export function targetsFrom<S extends string, E extends string>(
  definition: StateMachineDefinition<S, E>,
  from: S,
): S[] {
  if (!has(definition.table, from)) {
    return [];
  }
  const row = definition.table[from];
  const targets = new Set<S>();
  for (const event of definition.events) {
    const to = row[event];
    if (to !== undefined) {
      targets.add(to);
    }
  }
  // Listed in the machine's state order so generated SQL and docs are stable.
  return definition.states.filter((state) => targets.has(state));
}

export function edgesOf<S extends string, E extends string>(
  definition: StateMachineDefinition<S, E>,
): TransitionEdge<S, E>[] {
  const edges: TransitionEdge<S, E>[] = [];
  for (const from of definition.states) {
    const row = definition.table[from];
    for (const event of definition.events) {
      const to = row[event];
      if (to !== undefined) {
        edges.push({ from, event, to });
      }
    }
  }
  return edges;
}

/** Throws the error an API layer turns into "this action is not allowed now". */
export function transitionOrThrow<S extends string, E extends string>(
  definition: StateMachineDefinition<S, E>,
  from: S,
  event: E,
): S {
  const result = lookupTransition(definition, from, event);
  if (!result.ok) {
    throw new ValidationError('TASKER_INVALID_TRANSITION', result.reason, {
      details: { machine: definition.machine, from, event },
    });
  }
  return result.to;
}
