/**
 * The shape shared by the task and step state machines: a transition table is plain data
 * (`from -> event -> to`). The tables document the machines with the events that fire each transition; what
 * runs is SQL, whose compare-and-set functions refuse any `(from_state, to_state)` missing from
 * `tasker.task_state_transitions` / `tasker.step_state_transitions`. The flattened edges below are what
 * test/integration/stateTransitionTables.test.ts compares with those tables, so the two cannot drift apart.
 */

export type TransitionTable<S extends string, E extends string> = Readonly<
  Record<S, Readonly<Partial<Record<E, S>>>>
>;

/** One allowed edge of a table, flattened. */
export interface TransitionEdge<S extends string, E extends string> {
  readonly from: S;
  readonly event: E;
  readonly to: S;
}

/** Freezes the table and its rows so no caller can widen the documented transitions at runtime. */
export function freezeTable<S extends string, E extends string>(
  table: Record<S, Partial<Record<E, S>>>,
): TransitionTable<S, E> {
  for (const row of Object.values<Partial<Record<E, S>>>(table)) {
    Object.freeze(row);
  }
  return Object.freeze(table);
}

/** Every `(from, event, to)` of `table`, in the order of `states`, then of `events`, so the list is stable. */
export function edgesOf<S extends string, E extends string>(
  states: readonly S[],
  events: readonly E[],
  table: TransitionTable<S, E>,
): TransitionEdge<S, E>[] {
  const edges: TransitionEdge<S, E>[] = [];
  for (const from of states) {
    const row = table[from];
    for (const event of events) {
      const to = row[event];
      if (to !== undefined) {
        edges.push({ from, event, to });
      }
    }
  }
  return edges;
}
