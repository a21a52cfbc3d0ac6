import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation, service as healthServiceDefinition } from 'grpc-health-check';
import type { ServingStatus } from 'grpc-health-check';

/** The name a client passes to grpc.health.v1.Health/Check for the health of the whole server. */
const OVERALL_HEALTH = '';

/**
 * The name for a liveness probe: SERVING for as long as the process answers at all. The other names follow
 * readiness (NOT_SERVING while the database is down), which would make a liveness probe restart every pod
 * during a database outage.
 */
export const LIVENESS_HEALTH = 'liveness';

type Handlers = Record<string, grpc.UntypedHandleCall>;

/**
 * The standard `grpc.health.v1.Health` service (what Kubernetes gRPC probes and grpc health-checking load
 * balancers call), answering for the whole server ("") and for each named service (readiness), and for
 * "liveness" (the process is up). Unknown names get
 * NOT_FOUND from Check and SERVICE_UNKNOWN from Watch, as the protocol says.
 *
 * The library's handlers serve the status map; around them, Check first refreshes the map (so a probe sees
 * the current readiness, not the last timer tick), and Watch streams are tracked so that shutdown can end
 * them instead of waiting for clients that never hang up.
 */
export class StandardHealth {
  private readonly names: readonly string[];
  private readonly implementation: HealthImplementation;
  private readonly watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();

  constructor(serviceNames: readonly string[]) {
    this.names = [OVERALL_HEALTH, ...serviceNames];
    this.implementation = new HealthImplementation({
      ...Object.fromEntries(this.names.map((name) => [name, 'NOT_SERVING' satisfies ServingStatus])),
      [LIVENESS_HEALTH]: 'SERVING' satisfies ServingStatus,
    });
  }

  setServing(serving: boolean): void {
    for (const name of this.names) {
      this.implementation.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING');
    }
  }

  /** @param refresh brings the status map up to date; awaited before each Check answers. */
  addToServer(server: grpc.Server, refresh: () => Promise<unknown>): void {
    let library: Handlers | undefined;
    // HealthImplementation only hands its handlers to addService; take them to wrap two of them.
    this.implementation.addToServer({
      addService: (_definition, implementation) => {
        library = implementation;
      },
    });
    const check = library?.check as grpc.handleUnaryCall<unknown, unknown> | undefined;
    const watch = library?.watch as grpc.handleServerStreamingCall<unknown, unknown> | undefined;
    if (library === undefined || check === undefined || watch === undefined) {
      throw new Error('grpc-health-check no longer provides check and watch handlers');
    }
    server.addService(healthServiceDefinition, {
      ...library,
      check: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        // Answer from the map even if a refresh broke its contract and rejected.
        const answer = () => check(call, callback);
        void refresh().then(answer, answer);
      },
      watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        this.watches.add(call);
        call.on('cancelled', () => this.watches.delete(call));
        watch(call);
      },
    });
  }

  /** Ends open Watch streams (after their last NOT_SERVING update), so a graceful shutdown can finish. */
  endWatches(): void {
    for (const call of this.watches) call.end();
    this.watches.clear();
  }
}
