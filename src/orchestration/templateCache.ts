import type { Queryable } from '../db/database.ts';
import { findTemplate } from '../db/queries/findTemplate.ts';
import type { RegisteredTemplate } from '../db/queries/findTemplate.ts';

export interface TemplateCacheOptions {
  /** `[database.query_cache] enabled`. @defaultValue true */
  enabled?: boolean;
  /** `[database.query_cache] max_size`. @defaultValue 1000 */
  maxSize?: number;
  /** `[database.query_cache] ttl_seconds`: a re-registered template is seen within this time. @defaultValue 300 */
  ttlSeconds?: number;
}

/**
 * Registered templates by namespace/name/version, kept in memory so task creation does not read the
 * registry (and recompile the input schema) on every request. Entries expire after the TTL; the oldest
 * entry goes first when the cache is full. Misses are not cached, so a template registered a moment later
 * is found at once. Concurrent lookups of one template share a single registry read: a burst of task
 * requests arriving when an entry is missing or has just expired would otherwise send one read each, and
 * every one of them would wait for a pool connection (30,000 at once exhausted the engine benchmark's pool).
 *
 * Nothing tells the cache that a worker re-registered a template: a template changed under the same
 * namespace/name/version is used only once its entry expires (`ttlSeconds`), while a new version is a miss
 * and found at once. That is why the services leave it off unless configured (docs/services.md).
 */
export class TemplateCache {
  private readonly entries = new Map<string, { value: RegisteredTemplate; expiresAt: number }>();
  /** Registry reads on their way, by key: later callers wait for the same read. */
  private readonly reading = new Map<string, Promise<RegisteredTemplate | undefined>>();
  private readonly enabled: boolean;
  private readonly maxSize: number;
  private readonly ttlMs: number;

  constructor(options: TemplateCacheOptions = {}) {
    this.enabled = options.enabled ?? true;
    this.maxSize = Math.max(1, options.maxSize ?? 1_000);
    this.ttlMs = (options.ttlSeconds ?? 300) * 1000;
  }

  async find(
    db: Queryable,
    namespace: string,
    name: string,
    version: string,
  ): Promise<RegisteredTemplate | undefined> {
    if (!this.enabled) return findTemplate(db, namespace, name, version);
    const key = `${namespace}\u0000${name}\u0000${version}`;
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expiresAt > Date.now()) return hit.value;
    const pending = this.reading.get(key);
    if (pending !== undefined) return pending;
    const read = this.read(db, key, namespace, name, version);
    this.reading.set(key, read);
    try {
      return await read;
    } finally {
      // Only this read's own entry: after clear(), a newer read of the key may have taken its place.
      if (this.reading.get(key) === read) this.reading.delete(key);
    }
  }

  private async read(
    db: Queryable,
    key: string,
    namespace: string,
    name: string,
    version: string,
  ): Promise<RegisteredTemplate | undefined> {
    const value = await findTemplate(db, namespace, name, version);
    this.entries.delete(key);
    if (value === undefined) return undefined;
    if (this.entries.size >= this.maxSize) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expiresAt: Date.now() + this.ttlMs });
    return value;
  }

  clear(): void {
    this.entries.clear();
    this.reading.clear();
  }
}
