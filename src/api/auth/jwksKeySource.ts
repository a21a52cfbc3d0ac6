import { createLocalJWKSet, errors } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import type { Logger } from '../../observability/logger.ts';

export interface JwksKeySourceOptions {
  url: string;
  /** The set is fetched again on the first request after it is this old. */
  refreshIntervalMs: number;
  /** After a failed refresh the old set keeps verifying this long past its refresh time. */
  staleGraceMs: number;
  /** A `kid` missing from the set triggers a refresh at most this often. */
  unknownKidCooldownMs: number;
  logger: Logger;
  /** @defaultValue 5000 */
  fetchTimeoutMs?: number;
}

/** The key set could not be fetched and no usable copy is left: the server's problem, not the caller's. */
export class KeySetUnavailableError extends Error {}

/** After a failed fetch, the next attempt waits this long (or the cooldown, if shorter). */
const FAILED_FETCH_RETRY_MS = 5_000;

/**
 * A JSON Web Key Set fetched from `url` and cached. jose's own createRemoteJWKSet has no stale grace (a failed
 * refresh fails every request at once) and retries a failed fetch on every request, so the fetching and
 * its schedule live here; key selection by `kid`/`alg` stays jose's (createLocalJWKSet).
 *
 * Every fetch is single-flight: concurrent requests share one. Fetches happen only on requests, so an idle
 * service never calls the identity provider.
 */
export class JwksKeySource {
  private local: JWTVerifyGetKey | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastAttemptFailed = false;
  private pending: Promise<void> | undefined;
  private readonly timeoutMs: number;
  /** Counts successful fetches: what was verified with an older set may rest on a withdrawn key. */
  generation = 0;

  constructor(private readonly options: JwksKeySourceOptions) {
    this.timeoutMs = options.fetchTimeoutMs ?? 5_000;
  }

  /** jose's key lookup for jwtVerify. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const { refreshIntervalMs, staleGraceMs, unknownKidCooldownMs } = this.options;
    if (Date.now() - this.fetchedAt >= refreshIntervalMs) {
      await this.refresh(FAILED_FETCH_RETRY_MS).catch(() => undefined);
      if (this.local === undefined || Date.now() - this.fetchedAt >= refreshIntervalMs + staleGraceMs) {
        throw new KeySetUnavailableError(
          this.local === undefined
            ? 'the key set (jwks_url) could not be fetched yet'
            : 'the key set (jwks_url) could not be refreshed within its stale grace',
        );
      }
    }
    const local = this.local as JWTVerifyGetKey;
    try {
      return await local(header, token);
    } catch (error) {
      // A key rotated in since the last fetch: one refresh, rate-limited so random kids cannot flood the IdP.
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      const refreshed = await this.refresh(unknownKidCooldownMs).catch(() => false);
      if (!refreshed) throw error;
      return (this.local as JWTVerifyGetKey)(header, token);
    }
  };

  /**
   * Fetches the set unless an attempt was made less than `minIntervalMs` ago. Resolves true when a new set
   * was fetched; rejects when the fetch failed.
   */
  private async refresh(minIntervalMs: number): Promise<boolean> {
    if (this.pending !== undefined) {
      await this.pending;
      return true;
    }
    const sinceLast = Date.now() - this.lastAttemptAt;
    const wait = this.lastAttemptFailed ? Math.min(minIntervalMs, FAILED_FETCH_RETRY_MS) : minIntervalMs;
    if (sinceLast < wait) return false;
    this.lastAttemptAt = Date.now();
    const fetching = this.fetchSet().finally(() => {
      this.pending = undefined;
    });
    this.pending = fetching;
    await fetching;
    return true;
  }

  private async fetchSet(): Promise<void> {
    try {
      const response = await fetch(this.options.url, {
        headers: { accept: 'application/json, application/jwk-set+json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
      const json: unknown = await response.json();
      this.local = createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]);
      this.fetchedAt = Date.now();
      this.generation += 1;
      this.lastAttemptFailed = false;
      const keys = (json as { keys?: unknown[] }).keys;
      this.options.logger.info(
        { jwks_url: this.options.url, keys: Array.isArray(keys) ? keys.length : 0 },
        'JWKS key set fetched',
      );
    } catch (error) {
      this.lastAttemptFailed = true;
      this.options.logger.warn(
        { jwks_url: this.options.url, err: error instanceof Error ? error.message : String(error) },
        'JWKS key set fetch failed; the last fetched set (if any) is used within its stale grace',
      );
      throw error;
    }
  }
}
