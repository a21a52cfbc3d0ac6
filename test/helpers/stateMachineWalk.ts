import type { TransitionTable } from '../../src/domain/state/transitionTable.ts';

/** Walks a state machine given as (from, event, to) edges and its lookup table, for the state-machine tests. */
export function stateMachineWalk<S extends string, E extends string>(
  edges: readonly (readonly [S, E, S])[],
  table: TransitionTable<S, E>,
): {
  eventsFrom: (state: S) => E[];
  targetsFrom: (state: S) => Set<S>;
  /** The states reachable from `start` in zero or more transitions. */
  reachableFrom: (start: S) => Set<S>;
  /** Follows `events` through the table from `start`; throws at the first event the state refuses. */
  follow: (start: S, events: E[]) => S;
} {
  const eventsFrom = (state: S): E[] => edges.filter(([from]) => from === state).map(([, event]) => event);
  const targetsFrom = (state: S): Set<S> =>
    new Set(edges.filter(([from]) => from === state).map(([, , to]) => to));
  const reachableFrom = (start: S): Set<S> => {
    const seen = new Set<S>([start]);
    const queue = [start];
    for (let state = queue.shift(); state !== undefined; state = queue.shift()) {
      for (const to of targetsFrom(state)) {
        if (!seen.has(to)) {
          seen.add(to);
          queue.push(to);
        }
      }
    }
    return seen;
  };
  const follow = (start: S, events: E[]): S =>
    events.reduce<S>((state, event) => {
      const to = table[state][event];
      if (to === undefined) throw new Error(`${state} does not accept ${event}`);
      return to;
    }, start);
  return { eventsFrom, targetsFrom, reachableFrom, follow };
}
