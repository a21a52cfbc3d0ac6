/**
 * Graph helpers over a template's steps. Pure and deterministic: wherever there is a choice, steps come in
 * declaration order, so the same template always gives the same answer.
 *
 * The parser calls these on unvalidated steps, so `findCycle`/`findCycles` tolerate what the parser reports
 * separately: dependencies on unknown steps and on the step itself are ignored, and a name declared twice
 * gets the union of both declarations' dependencies. The other helpers expect a valid template and throw
 * on unknown names or a cycle.
 */
import { ValidationError } from '../errors.ts';

export interface DagStep {
  readonly name: string;
  /** Names of the steps that must complete before this one. */
  readonly dependencies: readonly string[];
}

interface Graph {
  /** Step names in declaration order, each once. */
  order: string[];
  position: Map<string, number>;
  /** name -> its dependencies (known, not itself, each once, declaration order of the YAML list). */
  dependencies: Map<string, string[]>;
  /** name -> steps that depend on it, in declaration order. */
  dependents: Map<string, string[]>;
}

function buildGraph(steps: readonly DagStep[]): Graph {
  const order: string[] = [];
  const position = new Map<string, number>();
  for (const step of steps) {
    if (!position.has(step.name)) {
      position.set(step.name, order.length);
      order.push(step.name);
    }
  }
  const dependencies = new Map<string, string[]>(order.map((name) => [name, []]));
  for (const step of steps) {
    const list = dependencies.get(step.name) ?? [];
    for (const dependency of step.dependencies) {
      if (dependency !== step.name && position.has(dependency) && !list.includes(dependency)) {
        list.push(dependency);
      }
    }
  }
  const dependents = new Map<string, string[]>(order.map((name) => [name, []]));
  for (const name of order) {
    for (const dependency of dependencies.get(name) ?? []) dependents.get(dependency)?.push(name);
  }
  return { order, position, dependencies, dependents };
}

/**
 * Cycles in "depends on" direction, each starting and ending at its earliest-declared step:
 * `['a', 'b', 'c', 'a']` means a depends on b, b on c and c on a. One cycle per back edge of a depth-first
 * walk in declaration order, so every strongly connected tangle is reported at least once.
 */
export function findCycles(steps: readonly DagStep[]): string[][] {
  const graph = buildGraph(steps);
  const state = new Map<string, 'active' | 'done'>();
  const cycles: string[][] = [];
  const stack: string[] = [];

  // Iterative depth-first walk: a template of thousands of chained steps must not overflow the call stack.
  for (const start of graph.order) {
    if (state.has(start)) continue;
    const frames: { name: string; next: number }[] = [{ name: start, next: 0 }];
    state.set(start, 'active');
    stack.push(start);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1];
      if (frame === undefined) break;
      const dependencies = graph.dependencies.get(frame.name) ?? [];
      const dependency = dependencies[frame.next];
      if (dependency === undefined) {
        state.set(frame.name, 'done');
        stack.pop();
        frames.pop();
        continue;
      }
      frame.next += 1;
      const seen = state.get(dependency);
      if (seen === undefined) {
        state.set(dependency, 'active');
        stack.push(dependency);
        frames.push({ name: dependency, next: 0 });
      } else if (seen === 'active') {
        cycles.push(rotateToEarliest(stack.slice(stack.indexOf(dependency)), graph.position));
      }
    }
  }
  return cycles;
}

/** `['b', 'c', 'a']` (b -> c -> a -> b) with a declared first becomes `['a', 'b', 'c', 'a']`. */
function rotateToEarliest(members: string[], position: ReadonlyMap<string, number>): string[] {
  let first = 0;
  members.forEach((name, index) => {
    if ((position.get(name) ?? 0) < (position.get(members[first] ?? '') ?? 0)) first = index;
  });
  const rotated = [...members.slice(first), ...members.slice(0, first)];
  return [...rotated, rotated[0] ?? ''];
}

/** The first cycle `findCycles` finds, or null when the steps form a DAG. */
export function findCycle(steps: readonly DagStep[]): string[] | null {
  return findCycles(steps)[0] ?? null;
}

function assertValid(steps: readonly DagStep[]): Graph {
  const graph = buildGraph(steps);
  for (const step of steps) {
    for (const dependency of step.dependencies) {
      if (!graph.position.has(dependency)) {
        throw new ValidationError(
          'TASKER_INVALID_ARGUMENT',
          `step "${step.name}" depends on unknown step "${dependency}": pass steps from a parsed template (parseTaskTemplate rejects this)`,
          { details: { step: step.name, dependency } },
        );
      }
    }
  }
  const cycle = findCycle(steps);
  if (cycle !== null) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `steps are not a DAG, dependency cycle: ${cycle.join(' -> ')}: pass steps from a parsed template (parseTaskTemplate rejects this)`,
      { details: { cycle } },
    );
  }
  return graph;
}

function assertKnown(graph: Graph, name: string): void {
  if (!graph.position.has(name)) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `no step named "${name}"; steps are: ${graph.order.join(', ')}`,
      { details: { step: name } },
    );
  }
}

/**
 * Every step after all of its dependencies. Among steps that are ready at the same time the earlier-declared
 * comes first, so a template already written in dependency order comes back unchanged.
 * @throws ValidationError (TASKER_INVALID_ARGUMENT) on an unknown dependency or a cycle
 */
export function topologicalOrder(steps: readonly DagStep[]): string[] {
  const graph = assertValid(steps);
  const waitingOn = new Map(graph.order.map((name) => [name, graph.dependencies.get(name)?.length ?? 0]));
  const ready = graph.order.filter((name) => waitingOn.get(name) === 0);
  const result: string[] = [];
  // `ready` is kept sorted by declaration position; templates are small, so insertion is cheap enough.
  while (ready.length > 0) {
    const name = ready.shift();
    if (name === undefined) break;
    result.push(name);
    for (const dependent of graph.dependents.get(name) ?? []) {
      const remaining = (waitingOn.get(dependent) ?? 0) - 1;
      waitingOn.set(dependent, remaining);
      if (remaining === 0) {
        const at = graph.position.get(dependent) ?? 0;
        const index = ready.findIndex((other) => (graph.position.get(other) ?? 0) > at);
        ready.splice(index === -1 ? ready.length : index, 0, dependent);
      }
    }
  }
  return result;
}

/** Steps without dependencies (the ones a new task starts with), in declaration order. */
export function rootSteps(steps: readonly DagStep[]): string[] {
  const graph = buildGraph(steps);
  return graph.order.filter((name) => (graph.dependencies.get(name)?.length ?? 0) === 0);
}

function reachable(graph: Graph, from: string, edges: ReadonlyMap<string, string[]>): string[] {
  const seen = new Set<string>();
  const pending = [...(edges.get(from) ?? [])];
  while (pending.length > 0) {
    const name = pending.pop();
    if (name === undefined || seen.has(name) || name === from) continue;
    seen.add(name);
    pending.push(...(edges.get(name) ?? []));
  }
  return graph.order.filter((name) => seen.has(name));
}

/**
 * Every step that depends on `name`, directly or transitively (not `name` itself), in declaration order.
 * @throws ValidationError (TASKER_INVALID_ARGUMENT) when no step has that name
 */
export function descendants(steps: readonly DagStep[], name: string): string[] {
  const graph = buildGraph(steps);
  assertKnown(graph, name);
  return reachable(graph, name, graph.dependents);
}

/**
 * Every step `name` depends on, directly or transitively (not `name` itself), in declaration order: the
 * steps whose results a handler sees in `dependencyResults`.
 * @throws ValidationError (TASKER_INVALID_ARGUMENT) when no step has that name
 */
export function ancestors(steps: readonly DagStep[], name: string): string[] {
  const graph = buildGraph(steps);
  assertKnown(graph, name);
  return reachable(graph, name, graph.dependencies);
}
