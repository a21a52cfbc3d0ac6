import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import {
  ancestors,
  descendants,
  findCycle,
  findCycles,
  rootSteps,
  topologicalOrder,
} from '../../../src/domain/template/dag.ts';
import type { DagStep } from '../../../src/domain/template/dag.ts';
import { parseFixture } from './templateTestKit.ts';

/** `dag('b<a', 'a', 'c<a,b')`: each entry is `name<dependency,dependency`. */
function dag(...entries: string[]): DagStep[] {
  return entries.map((entry) => {
    const [name = '', dependencies = ''] = entry.split('<');
    return { name, dependencies: dependencies === '' ? [] : dependencies.split(',') };
  });
}

const TREE = parseFixture('valid/shapes/tree/hierarchical_tree.yaml').steps;
const MIXED = parseFixture('valid/shapes/mixed_dag.yml').steps;

describe('findCycle', () => {
  it('returns null for a DAG, including the §13 shapes', () => {
    expect(findCycle(dag('a', 'b<a', 'c<a', 'd<b,c'))).toBeNull();
    expect(findCycle(TREE)).toBeNull();
    expect(findCycle(MIXED)).toBeNull();
    expect(findCycle([])).toBeNull();
  });

  it('names the cycle in depends-on order, starting and ending at its earliest-declared step', () => {
    // c depends on b, b on a, a on c: declared a first, so a -> c -> b -> a.
    expect(findCycle(dag('a<c', 'b<a', 'c<b'))).toEqual(['a', 'c', 'b', 'a']);
    // Same graph declared in another order: still starts at the earliest-declared member.
    expect(findCycle(dag('x', 'c<b', 'b<a', 'a<c,x'))).toEqual(['c', 'b', 'a', 'c']);
    expect(findCycle(dag('a<b', 'b<a'))).toEqual(['a', 'b', 'a']);
    // Entered at b through x, but c is declared before b.
    expect(findCycle(dag('x<b', 'c<b', 'b<c'))).toEqual(['c', 'b', 'c']);
  });

  it('ignores self-dependencies and unknown names (the parser reports those on their own)', () => {
    expect(findCycle(dag('a<a', 'b<a,ghost'))).toBeNull();
  });

  it('finds a cycle through a name declared twice, using both declarations', () => {
    expect(findCycle(dag('a', 'b<a', 'a<b'))).toEqual(['a', 'b', 'a']);
  });

  it('reports every separate cycle', () => {
    expect(findCycles(dag('a<b', 'b<a', 'c', 'd<e', 'e<d'))).toEqual([
      ['a', 'b', 'a'],
      ['d', 'e', 'd'],
    ]);
  });

  it('handles a chain of 10 000 steps without overflowing the stack', () => {
    const chain = Array.from({ length: 10_000 }, (_, i) => ({
      name: `s${i}`,
      dependencies: i === 0 ? ['s9999'] : [`s${i - 1}`],
    }));
    const cycle = findCycle(chain);
    expect(cycle).toHaveLength(10_001);
    expect(cycle?.slice(0, 3)).toEqual(['s0', 's9999', 's9998']);
  });
});

describe('topologicalOrder', () => {
  it('keeps a template already in dependency order unchanged', () => {
    expect(topologicalOrder(TREE)).toEqual(TREE.map((s) => s.name));
  });

  it('puts every step after its dependencies, earlier-declared first among ready steps', () => {
    expect(topologicalOrder(dag('finish<left,right', 'right<start', 'left<start', 'start'))).toEqual([
      'start',
      'right',
      'left',
      'finish',
    ]);
    expect(topologicalOrder(dag('c<a', 'b', 'a'))).toEqual(['b', 'a', 'c']);
    // c becomes ready after b already is, but is declared before it.
    expect(topologicalOrder(dag('a', 'c<a', 'b'))).toEqual(['a', 'c', 'b']);
  });

  it('throws on a cycle or an unknown dependency', () => {
    const cyclic = dag('a<b', 'b<a');
    expect(() => topologicalOrder(cyclic)).toThrow(ValidationError);
    expect(() => topologicalOrder(cyclic)).toThrow(
      'steps are not a DAG, dependency cycle: a -> b -> a: pass steps from a parsed template (parseTaskTemplate rejects this)',
    );
    expect(() => topologicalOrder(dag('a<ghost'))).toThrow(/step "a" depends on unknown step "ghost"/);
  });
});

describe('rootSteps, descendants, ancestors', () => {
  it('rootSteps: the steps a task starts with, in declaration order', () => {
    expect(rootSteps(dag('b<a', 'a', 'c', 'd<c'))).toEqual(['a', 'c']);
    expect(rootSteps(MIXED)).toEqual(['dag_init']);
  });

  it('descendants: everything downstream, transitively, in declaration order', () => {
    expect(descendants(MIXED, 'dag_process_left')).toEqual(['dag_validate', 'dag_transform', 'dag_finalize']);
    expect(descendants(MIXED, 'dag_finalize')).toEqual([]);
    expect(descendants(TREE, 'tree_branch_right')).toEqual([
      'tree_leaf_f',
      'tree_leaf_g',
      'tree_final_convergence',
    ]);
  });

  it('ancestors: everything upstream, transitively, in declaration order', () => {
    expect(ancestors(MIXED, 'dag_transform')).toEqual(['dag_init', 'dag_process_left']);
    expect(ancestors(TREE, 'tree_final_convergence')).toEqual(TREE.slice(0, -1).map((s) => s.name));
    expect(ancestors(MIXED, 'dag_init')).toEqual([]);
  });

  it('throws for a step name that is not there, listing the steps', () => {
    expect(() => descendants(dag('a', 'b<a'), 'c')).toThrow('no step named "c"; steps are: a, b');
    expect(() => ancestors(dag('a'), 'z')).toThrow(ValidationError);
  });
});
