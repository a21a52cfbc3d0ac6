/**
 * The soak's load: tasks of the example templates (linear, diamond, tree) created at a steady rate through the
 * REST API of the orchestrators, each with a context whose every step value is known in advance. A creation
 * keeps one Idempotency-Key across all its attempts and moves to the other orchestrator when one fails, so a
 * retry after a lost answer (an orchestrator killed mid-request) gets the task the first attempt made.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServerAnswerError } from '../../src/client/taskerClient.ts';
import type { SoakCluster } from './soakCluster.ts';

type Workflow = 'linear' | 'diamond' | 'tree';

export interface AcceptedTask {
  taskUuid: string;
  workflow: Workflow;
  /** Every step's `results.value`. */
  expected: Record<string, number>;
  /** Date.now() when the 201/200 answer arrived. */
  acceptedAt: number;
}

interface Planned {
  template: string;
  workflow: Workflow;
  context: Record<string, number>;
  expected: Record<string, number>;
}

/** The tag every soak task carries: tasks with it that no answer acknowledged are counted at the end. */
export const SOAK_TAG = 'soak';

/** A whole creation (every attempt, both orchestrators) gives up after this long. */
const CREATE_DEADLINE_MS = 45_000;
/** Creations in flight at most; a tick beyond it is skipped and counted. */
const MAX_IN_FLIGHT = 400;

/** The workflow for sequence number `seq`, with its context and expected values (examples/templates). */
function plan(seq: number): Planned {
  switch (seq % 3) {
    case 0: {
      // Squared four times: e^2, e^4, e^8, e^16; 8^16 = 2^48 is still exact in a double.
      const e = 2 * (1 + (seq % 4));
      return {
        template: 'mathematical_sequence',
        workflow: 'linear',
        context: { even_number: e },
        expected: {
          linear_step_1: e ** 2,
          linear_step_2: e ** 4,
          linear_step_3: e ** 8,
          linear_step_4: e ** 16,
        },
      };
    }
    case 1: {
      const n = 1 + (seq % 1000);
      return {
        template: 'diamond_pattern',
        workflow: 'diamond',
        context: { n },
        expected: {
          diamond_start: n * n,
          diamond_branch_b: 2 * n * n,
          diamond_branch_c: 3 * n * n,
          diamond_end: 5 * n * n,
        },
      };
    }
    default: {
      const n = 1 + (seq % 1000);
      return {
        template: 'hierarchical_tree',
        workflow: 'tree',
        context: { n },
        expected: {
          tree_root: n,
          tree_left: 2 * n,
          tree_right: 3 * n,
          tree_left_a: 2 * n + 1,
          tree_left_b: 2 * n + 2,
          tree_right_a: 3 * n + 1,
          tree_right_b: 3 * n + 2,
          tree_final: 10 * n + 6,
        },
      };
    }
  }
}

export class LoadGenerator {
  readonly accepted: AcceptedTask[] = [];
  /** Creations that got no 201/200 within CREATE_DEADLINE_MS (the task may or may not exist). */
  gaveUp = 0;
  /** Creations answered with a 4xx other than 429: a bug in the request or the server. */
  rejected = 0;
  /** Ticks skipped because MAX_IN_FLIGHT creations were still waiting. */
  skipped = 0;
  /** Creations that needed another orchestrator after the first failed. */
  failedOver = 0;
  private seq = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly cluster: SoakCluster,
    private readonly ratePerSecond: number,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops creating and waits for the creations in flight (each bounded by CREATE_DEADLINE_MS). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Creates one task now (outside the steady rate); its uuid, or undefined if it was not accepted. */
  async createOne(): Promise<string | undefined> {
    return this.create(this.seq++);
  }

  private async run(): Promise<void> {
    const interval = 1000 / this.ratePerSecond;
    let due = performance.now();
    while (this.running) {
      if (this.inFlight.size >= MAX_IN_FLIGHT) {
        this.skipped += 1;
      } else {
        const call = this.create(this.seq++);
        this.inFlight.add(call);
        void call.finally(() => this.inFlight.delete(call));
      }
      due += interval;
      // A loop that fell behind (a synchronous pg_ctl call blocked the event loop) does not burst to catch up.
      due = Math.max(due, performance.now() - interval);
      await sleep(Math.max(0, due - performance.now()));
    }
  }

  private async create(seq: number): Promise<string | undefined> {
    const planned = plan(seq);
    const requestKey = randomUUID();
    const deadline = Date.now() + CREATE_DEADLINE_MS;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const orchestrators = this.cluster.orchestrators();
      const member = orchestrators[(seq + attempt) % orchestrators.length];
      const client = member?.client;
      if (client === undefined) {
        await sleep(200);
        continue;
      }
      try {
        const task = await client.createTask(
          {
            namespace: 'math',
            name: planned.template,
            version: '1.0.0',
            context: planned.context,
            tags: [SOAK_TAG],
          },
          { requestKey, signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) },
        );
        if (attempt > 0) this.failedOver += 1;
        this.accepted.push({
          taskUuid: task.task_uuid,
          workflow: planned.workflow,
          expected: planned.expected,
          acceptedAt: Date.now(),
        });
        return task.task_uuid;
      } catch (error) {
        if (
          error instanceof ServerAnswerError &&
          error.status >= 400 &&
          error.status < 500 &&
          error.status !== 429
        ) {
          this.rejected += 1;
          return undefined;
        }
        // Unreachable, closed (its process was replaced), 503 beyond the client's retries: the other one.
        await sleep(100);
      }
    }
    this.gaveUp += 1;
    return undefined;
  }
}
