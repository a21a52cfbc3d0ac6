/**
 * A circuit breaker: a pure state machine over one dependency (the database, the message queue), with an
 * injectable clock so tests drive time.
 *
 *   closed ── error_threshold consecutive failures ──▶ open ── timeout_seconds ──▶ half_open
 *   open ── a probe of the dependency succeeds (BreakerProber) ──▶ half_open
 *   half_open ── a trial call succeeds ──▶ closed
 *   half_open ── a trial call fails, or half_open_timeout_seconds pass without a success ──▶ open
 *
 * While open every call fails at once with a CircuitError (TASKER_CIRCUIT_OPEN) carrying the seconds until
 * half-open; half-open lets calls through as trials. Only failures that say the dependency is unreachable
 * count (connection-class errors, see `connectionFailureOutcome`): a constraint violation proves the server
 * answered, and a lost race or an exhausted pool says nothing either way.
 *
 * Invariants:
 *  - time-based transitions happen at their scheduled instant; they are applied lazily, so every read (state,
 *    snapshot, a call) sees the state as of now;
 *  - an outcome only moves the breaker if the call was admitted in the breaker's current state (its epoch):
 *    a slow call started before the breaker opened cannot close it later, nor re-open a half-open breaker;
 *  - calls that were in flight together when a failure was counted are one piece of evidence: their failures
 *    do not count again. Only a call admitted after the last counted failure adds one. Terminating every
 *    backend at once (a failover, pg_terminate_backend) fails all in-flight statements together, and that
 *    one event must not open the breaker when the next connection works; a database that stays down keeps
 *    failing the retries, which do count.
 */
import { isConnectionError, sqlStateOf } from '../db/sqlState.ts';
import { CircuitError, ValidationError } from '../domain/errors.ts';

export type CircuitState = 'closed' | 'open' | 'half_open';

/** What a call's error says about the dependency. */
export type CallOutcome = 'failure' | 'success' | 'neutral';

export type TransitionReason =
  | 'error_threshold_reached'
  | 'open_timeout_elapsed'
  | 'probe_succeeded'
  | 'trial_succeeded'
  | 'trial_failed'
  | 'trial_window_ended';

/** The names mirror the `[circuit_breakers.<name>]` configuration keys. */
export interface CircuitBreakerSettings {
  /** false: the breaker counts failures but never opens. @defaultValue true */
  enabled?: boolean;
  /** Consecutive failures that open the breaker (a whole number, 1 or more). */
  errorThreshold: number;
  /** Seconds the breaker stays open before letting trial calls through (more than 0). */
  timeoutSeconds: number;
  /** Seconds of half-open trial before the breaker opens again without a success (more than 0). */
  halfOpenTimeoutSeconds: number;
}

export interface CircuitTransition {
  breaker: string;
  from: CircuitState;
  to: CircuitState;
  at: Date;
  reason: TransitionReason;
  consecutiveFailures: number;
  /** Code of the last counted failure (never its message, which may hold SQL or addresses). */
  lastError: string | null;
  /** Set when `to` is open: whole seconds until half-open. */
  retryAfterSeconds: number | null;
}

export interface CircuitBreakerOptions extends CircuitBreakerSettings {
  /** Shown in errors, health and metrics: `database`, `message_queue`. */
  name: string;
  /** Milliseconds since the epoch. @defaultValue Date.now */
  now?: () => number;
  /** How an error counts. @defaultValue connectionFailureOutcome */
  classifyError?: (error: unknown) => CallOutcome;
  /** Called synchronously on every transition (logging, metrics); it must not throw. */
  onTransition?: (transition: CircuitTransition) => void;
}

export interface CircuitBreakerSnapshot {
  name: string;
  enabled: boolean;
  state: CircuitState;
  consecutiveFailures: number;
  errorThreshold: number;
  timeoutSeconds: number;
  halfOpenTimeoutSeconds: number;
  /** When the breaker last opened; null unless open. */
  openedAt: Date | null;
  /** While open: when trial calls will be let through at the latest (a successful probe lets them in sooner). */
  halfOpenAt: Date | null;
  /** While open with a prober: when the dependency is probed next. */
  nextProbeAt: Date | null;
  /** While half-open: when the trial window ends (and the breaker opens again without a success). */
  trialEndsAt: Date | null;
  /** While open: whole seconds (at least 1) until half-open; otherwise null. */
  retryAfterSeconds: number | null;
  /** Calls refused while open since the breaker was made. */
  rejectedCalls: number;
  /** How often the breaker entered each state since it was made (it starts closed, uncounted). */
  transitions: Readonly<Record<CircuitState, number>>;
  /** The last few transitions, oldest first. */
  recentTransitions: readonly Pick<CircuitTransition, 'from' | 'to' | 'at' | 'reason'>[];
  lastError: string | null;
  lastFailureAt: Date | null;
}

const RECENT_TRANSITIONS = 10;

interface Admission {
  epoch: number;
  number: number;
}

/**
 * The default classification, for dependencies reached over a database connection (PostgreSQL, PGMQ):
 * connection-class errors are failures; an error with a SQLSTATE is the server answering, so a success for
 * the breaker; anything else (a lost compare-and-set reported by our code, an exhausted pool, a cancelled
 * call) is neutral and changes nothing.
 */
export function connectionFailureOutcome(error: unknown): CallOutcome {
  if (isConnectionError(error)) return 'failure';
  if (sqlStateOf(error) !== undefined) return 'success';
  return 'neutral';
}

/** A short, secret-free label for an error: its code (and its cause's), else its class name. */
export function errorLabel(error: unknown): string {
  const codeOf = (value: unknown): string | undefined =>
    typeof value === 'object' && value !== null && 'code' in value && typeof value.code === 'string'
      ? value.code
      : undefined;
  const code = codeOf(error);
  const causeCode = error instanceof Error ? codeOf(error.cause) : undefined;
  if (code !== undefined)
    return causeCode !== undefined && causeCode !== code ? `${code} (${causeCode})` : code;
  return error instanceof Error ? error.name : typeof error;
}

function checkSettings(options: CircuitBreakerOptions): void {
  const problems: string[] = [];
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(options.name)) {
    problems.push(
      `name must be 1-64 lowercase letters, digits and underscores, got ${JSON.stringify(options.name)}`,
    );
  }
  if (!Number.isInteger(options.errorThreshold) || options.errorThreshold < 1) {
    problems.push(`errorThreshold must be a whole number of 1 or more, got ${options.errorThreshold}`);
  }
  for (const key of ['timeoutSeconds', 'halfOpenTimeoutSeconds'] as const) {
    if (!Number.isFinite(options[key]) || options[key] <= 0) {
      problems.push(`${key} must be a number of seconds above 0, got ${options[key]}`);
    }
  }
  if (problems.length > 0) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `circuit breaker "${options.name}": ${problems.join('; ')}`,
      { details: { breaker: options.name, problems } },
    );
  }
}

export class CircuitBreaker {
  readonly name: string;
  readonly enabled: boolean;
  readonly errorThreshold: number;
  readonly timeoutSeconds: number;
  readonly halfOpenTimeoutSeconds: number;
  readonly #now: () => number;
  readonly #classify: (error: unknown) => CallOutcome;
  readonly #onTransition: ((transition: CircuitTransition) => void) | undefined;

  #state: CircuitState = 'closed';
  /** Bumped on every transition: outcomes of calls admitted under an older epoch are stale. */
  #epoch = 0;
  /** Calls admitted so far; each call's admission number orders it against counted failures. */
  #admitted = 0;
  /** `#admitted` when the last failure was counted: failures of calls admitted up to then are not new. */
  #failureMark = 0;
  #consecutiveFailures = 0;
  #openedAt = 0;
  #openUntil = 0;
  #halfOpenUntil = 0;
  /** While open: when the prober tries the dependency next (null: no prober, or none scheduled). */
  #nextProbeAt: number | null = null;
  #rejected = 0;
  readonly #transitions: Record<CircuitState, number> = { closed: 0, open: 0, half_open: 0 };
  readonly #recent: Pick<CircuitTransition, 'from' | 'to' | 'at' | 'reason'>[] = [];
  #lastError: string | null = null;
  #lastFailureAt: number | null = null;

  /** @throws ValidationError TASKER_INVALID_ARGUMENT when a setting is out of range */
  constructor(options: CircuitBreakerOptions) {
    checkSettings(options);
    this.name = options.name;
    this.enabled = options.enabled ?? true;
    this.errorThreshold = options.errorThreshold;
    this.timeoutSeconds = options.timeoutSeconds;
    this.halfOpenTimeoutSeconds = options.halfOpenTimeoutSeconds;
    this.#now = options.now ?? Date.now;
    this.#classify = options.classifyError ?? connectionFailureOutcome;
    this.#onTransition = options.onTransition;
  }

  get state(): CircuitState {
    this.#advance(this.#now());
    return this.#state;
  }

  /**
   * Runs `call` unless the breaker is open, and counts its outcome.
   * @throws CircuitError TASKER_CIRCUIT_OPEN while open (without calling); otherwise whatever `call` throws
   */
  async execute<T>(call: () => Promise<T>): Promise<T> {
    const admission = this.#admit();
    let result: T;
    try {
      result = await call();
    } catch (error) {
      this.#settle(admission, this.#classify(error), error);
      throw error;
    }
    this.#settle(admission, 'success', undefined);
    return result;
  }

  /**
   * While open: whole seconds (at least 1) until trial calls may be let through, which is the next probe when
   * one is scheduled; otherwise null.
   */
  retryAfterSeconds(): number | null {
    const now = this.#now();
    this.#advance(now);
    return this.#state === 'open' ? this.#secondsUntil(this.#reopensAt(), now) : null;
  }

  /** Records when the prober tries the dependency next, so Retry-After tells callers the truth. */
  scheduleProbe(at: number | null): void {
    this.#advance(this.#now());
    this.#nextProbeAt = this.#state === 'open' ? at : null;
  }

  /**
   * The dependency answered a probe while the breaker was open: let trial calls through now instead of at the
   * end of `timeout_seconds`. A no-op in any other state.
   */
  probeSucceeded(): void {
    const now = this.#now();
    this.#advance(now);
    if (this.#state === 'open') this.#enter('half_open', now, 'probe_succeeded');
  }

  snapshot(): CircuitBreakerSnapshot {
    const now = this.#now();
    this.#advance(now);
    const open = this.#state === 'open';
    const halfOpen = this.#state === 'half_open';
    return {
      name: this.name,
      enabled: this.enabled,
      state: this.#state,
      consecutiveFailures: this.#consecutiveFailures,
      errorThreshold: this.errorThreshold,
      timeoutSeconds: this.timeoutSeconds,
      halfOpenTimeoutSeconds: this.halfOpenTimeoutSeconds,
      openedAt: open ? new Date(this.#openedAt) : null,
      halfOpenAt: open ? new Date(this.#openUntil) : null,
      nextProbeAt: open && this.#nextProbeAt !== null ? new Date(this.#nextProbeAt) : null,
      trialEndsAt: halfOpen ? new Date(this.#halfOpenUntil) : null,
      retryAfterSeconds: open ? this.#secondsUntil(this.#reopensAt(), now) : null,
      rejectedCalls: this.#rejected,
      transitions: { ...this.#transitions },
      recentTransitions: this.#recent.map((t) => ({ ...t })),
      lastError: this.#lastError,
      lastFailureAt: this.#lastFailureAt === null ? null : new Date(this.#lastFailureAt),
    };
  }

  /** Lets a call through (returning the epoch it runs under and its number) or refuses it while open. */
  #admit(): Admission {
    const now = this.#now();
    this.#advance(now);
    if (this.#state !== 'open') return { epoch: this.#epoch, number: ++this.#admitted };
    this.#rejected += 1;
    const seconds = this.#secondsUntil(this.#reopensAt(), now);
    throw new CircuitError(
      `${this.name} is unavailable: its circuit breaker opened after ${this.#consecutiveFailures} consecutive ` +
        `connection failures (last: ${this.#lastError ?? 'unknown'}); calls fail at once until a probe finds it ` +
        `back (next in ${seconds} s), then trial calls test it`,
      {
        breaker: this.name,
        retryAfterSeconds: seconds,
        details: { consecutive_failures: this.#consecutiveFailures, last_error: this.#lastError },
      },
    );
  }

  #settle(admission: Admission, outcome: CallOutcome, error: unknown): void {
    const now = this.#now();
    this.#advance(now);
    if (admission.epoch !== this.#epoch || outcome === 'neutral') return;
    if (outcome === 'success') {
      this.#consecutiveFailures = 0;
      if (this.#state === 'half_open') this.#enter('closed', now, 'trial_succeeded');
      return;
    }
    this.#lastError = errorLabel(error);
    this.#lastFailureAt = now;
    // In flight when the last failure was counted: the same event seen again.
    if (admission.number <= this.#failureMark) return;
    this.#failureMark = this.#admitted;
    this.#consecutiveFailures += 1;
    if (!this.enabled) return;
    if (this.#state === 'half_open') this.#enter('open', now, 'trial_failed');
    else if (this.#state === 'closed' && this.#consecutiveFailures >= this.errorThreshold) {
      this.#enter('open', now, 'error_threshold_reached');
    }
  }

  /** Applies the time-based transitions due by `now`, each at its scheduled instant. */
  #advance(now: number): void {
    if (this.#state === 'open' && now >= this.#openUntil) {
      this.#enter('half_open', this.#openUntil, 'open_timeout_elapsed');
    }
    if (this.#state === 'half_open' && now >= this.#halfOpenUntil) {
      // No trial succeeded within the window: open again from the window's end. A breaker nobody used for
      // whole open + half-open cycles skips them rather than replaying each (nothing was tried in them).
      const cycleMs = (this.timeoutSeconds + this.halfOpenTimeoutSeconds) * 1000;
      const since = this.#halfOpenUntil + Math.floor((now - this.#halfOpenUntil) / cycleMs) * cycleMs;
      this.#enter('open', since, 'trial_window_ended');
      if (now >= this.#openUntil) this.#enter('half_open', this.#openUntil, 'open_timeout_elapsed');
    }
  }

  /** While open: the earliest instant trial calls may be let through. */
  #reopensAt(): number {
    return this.#nextProbeAt === null ? this.#openUntil : Math.min(this.#openUntil, this.#nextProbeAt);
  }

  #enter(to: CircuitState, at: number, reason: TransitionReason): void {
    const from = this.#state;
    this.#state = to;
    this.#nextProbeAt = null;
    this.#epoch += 1;
    this.#transitions[to] += 1;
    if (to === 'open') {
      this.#openedAt = at;
      this.#openUntil = at + this.timeoutSeconds * 1000;
    } else if (to === 'half_open') {
      this.#halfOpenUntil = at + this.halfOpenTimeoutSeconds * 1000;
    }
    this.#recent.push({ from, to, at: new Date(at), reason });
    if (this.#recent.length > RECENT_TRANSITIONS) this.#recent.shift();
    this.#onTransition?.({
      breaker: this.name,
      from,
      to,
      at: new Date(at),
      reason,
      consecutiveFailures: this.#consecutiveFailures,
      lastError: this.#lastError,
      retryAfterSeconds: to === 'open' ? this.#secondsUntil(this.#reopensAt(), at) : null,
    });
  }

  #secondsUntil(deadline: number, now: number): number {
    return Math.max(1, Math.ceil((deadline - now) / 1000));
  }
}
