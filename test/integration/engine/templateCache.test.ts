/**
 * The template cache of task creation against the registry in PostgreSQL: a burst of lookups of one template
 * makes one registry read (they used to make one each, and 30,000 at once exhausted the pool), misses are not
 * remembered, and a failed read reaches every caller that waited for it without poisoning the next lookup.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../../../src/db/database.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { TemplateCache } from '../../../src/orchestration/templateCache.ts';
import { templateNamed } from '../../helpers/engine/fixtures.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** The database, counting the registry reads (the tasker_find_template statement) made through it. */
function countingReads(db: Database): { db: Queryable; reads: () => number } {
  let reads = 0;
  return {
    db: {
      query: (sql, params, options) => {
        if (options?.name === 'tasker_find_template') reads += 1;
        return db.query(sql, params, options);
      },
      exec: (sql) => db.exec(sql),
    },
    reads: () => reads,
  };
}

describe('template cache', () => {
  const getTestDb = useTestDatabase();
  let db: Database;
  const linear = templateNamed('mathematical_sequence');

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 4 });
    await registerTemplate(db, linear);
  });

  it('200 concurrent lookups of one template make one registry read and all get the template', async () => {
    const cache = new TemplateCache();
    const counted = countingReads(db);
    const found = await Promise.all(
      Array.from({ length: 200 }, () =>
        cache.find(counted.db, linear.namespace, linear.name, linear.version),
      ),
    );
    expect(counted.reads()).toBe(1);
    expect(new Set(found.map((f) => f?.namedTaskUuid)).size).toBe(1);
    expect(found[0]?.template.name).toBe(linear.name);
    expect(found[0]?.template.steps.map((s) => s.name)).toEqual(linear.steps.map((s) => s.name));

    // Cached now: no read at all; after clear(), one read again.
    await cache.find(counted.db, linear.namespace, linear.name, linear.version);
    expect(counted.reads()).toBe(1);
    cache.clear();
    await Promise.all(
      [1, 2, 3].map(() => cache.find(counted.db, linear.namespace, linear.name, linear.version)),
    );
    expect(counted.reads()).toBe(2);
  });

  it('concurrent misses share a read, are not remembered, and a template registered after them is found', async () => {
    const cache = new TemplateCache();
    const counted = countingReads(db);
    const later = { ...linear, name: 'template_cache_registered_later' };
    const misses = await Promise.all(
      Array.from({ length: 20 }, () => cache.find(counted.db, later.namespace, later.name, later.version)),
    );
    expect(misses.every((m) => m === undefined)).toBe(true);
    expect(counted.reads()).toBe(1);

    await registerTemplate(db, later);
    const found = await cache.find(counted.db, later.namespace, later.name, later.version);
    expect(found?.template.name).toBe('template_cache_registered_later');
    expect(counted.reads()).toBe(2);
  });

  it('a failed read rejects every caller that shared it; the next lookup reads again', async () => {
    const cache = new TemplateCache();
    let failNext = true;
    let reads = 0;
    const flaky: Queryable = {
      query: async (sql, params, options) => {
        if (options?.name === 'tasker_find_template') {
          reads += 1;
          if (failNext) {
            failNext = false;
            throw new Error('connection reset while reading the registry');
          }
        }
        return db.query(sql, params, options);
      },
      exec: (sql) => db.exec(sql),
    };
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, () => cache.find(flaky, linear.namespace, linear.name, linear.version)),
    );
    expect(settled.map((s) => s.status)).toEqual(Array(5).fill('rejected'));
    expect(reads).toBe(1);

    const found = await cache.find(flaky, linear.namespace, linear.name, linear.version);
    expect(found?.template.name).toBe(linear.name);
    expect(reads).toBe(2);
  });
});
