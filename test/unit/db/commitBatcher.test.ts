import { describe, expect, it } from 'vitest';
import { CommitBatcher } from '../../../src/db/commitBatcher.ts';

/** A batcher whose commits wait until released, recording each batch and how many ran at once. */
function recording(maxBatch: number, maxInFlight: number) {
  const batches: number[][] = [];
  const releases: (() => void)[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const batcher = new CommitBatcher<number>({
    maxBatch,
    maxInFlight,
    commit: async (batch) => {
      batches.push(batch);
      running += 1;
      mostAtOnce = Math.max(mostAtOnce, running);
      await new Promise<void>((resolve) => releases.push(resolve));
      running -= 1;
    },
  });
  return { batcher, batches, releases, mostAtOnce: () => mostAtOnce };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('CommitBatcher', () => {
  it('commits the items of one turn together, not the first one alone', async () => {
    const { batcher, batches, releases } = recording(50, 2);
    for (const item of [1, 2, 3]) batcher.add(item);
    expect(batches).toEqual([]);
    await turn();
    expect(batches).toEqual([[1, 2, 3]]);
    releases.forEach((release) => release());
  });

  it('keeps at most maxInFlight commits on their way; later items go with the next, maxBatch at a time', async () => {
    const { batcher, batches, releases, mostAtOnce } = recording(2, 2);
    batcher.add(1);
    await turn();
    batcher.add(2);
    await turn();
    expect(batcher.inFlight).toBe(2);
    for (const item of [3, 4, 5]) batcher.add(item);
    await turn();
    expect(batches).toEqual([[1], [2]]);
    while (batches.flat().length < 5 || batcher.inFlight > 0) {
      releases.shift()?.();
      await turn();
    }
    expect(batches.slice(2)).toEqual([[3, 4], [5]]);
    expect(mostAtOnce()).toBe(2);
  });
});
