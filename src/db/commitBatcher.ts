/**
 * Gathers work submitted concurrently into shared commits: the items submitted in one turn of the event loop
 * go together at its end (setImmediate), at most `maxBatch` per commit and at most `maxInFlight` commits on
 * their way at once; items submitted while those are busy wait and go with the next. Used for task creation
 * (tasker.create_tasks) and for a worker's results (tasker.complete_many_and_claim), whose batches are written
 * as sets (src/db/sql/create_tasks.sql, complete_steps.sql), so a commit costs about the same whatever its size.
 *
 * Why the turn and not "at once": callers whose work committed together submit their next work in the same
 * turn, and the first of them going at once would pay a whole commit for one item.
 */
export interface CommitBatcherOptions<T> {
  maxBatch: number;
  maxInFlight: number;
  /** Commits one batch. Must settle every item of it (resolve or reject its caller) and never reject. */
  commit: (batch: T[]) => Promise<void>;
}

export class CommitBatcher<T> {
  private readonly pending: T[] = [];
  private running = 0;
  private scheduled = false;

  constructor(private readonly options: CommitBatcherOptions<T>) {}

  /** Commits on their way now. */
  get inFlight(): number {
    return this.running;
  }

  add(item: T): void {
    this.pending.push(item);
    if (this.scheduled || this.running >= this.options.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running += 1;
    try {
      for (;;) {
        const batch = this.pending.splice(0, this.options.maxBatch);
        if (batch.length === 0) return;
        await this.options.commit(batch);
      }
    } finally {
      this.running -= 1;
    }
  }
}
