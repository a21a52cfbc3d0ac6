/**
 * The routes the server has, kept as it registers them, so that a request no route matched can be told
 * apart: a path we know with the wrong method (405 + Allow) versus a path we do not know at all (404).
 */
import type { FastifyInstance } from 'fastify';

interface PathEntry {
  pattern: RegExp;
  methods: Set<string>;
}

function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => {
      if (segment === '*') return '.*';
      if (segment.startsWith(':')) return '[^/]+';
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${source}/?$`);
}

export class RouteTable {
  private readonly paths = new Map<string, PathEntry>();

  /** Records every route registered on `app` from now on. */
  track(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      let entry = this.paths.get(route.url);
      if (entry === undefined) {
        entry = { pattern: patternOf(route.url), methods: new Set() };
        this.paths.set(route.url, entry);
      }
      for (const method of methods) entry.methods.add(method.toUpperCase());
    });
  }

  /** Methods allowed on a concrete path, sorted; empty when no route has that path. */
  allowedMethods(path: string): string[] {
    const allowed = new Set<string>();
    for (const entry of this.paths.values()) {
      if (entry.pattern.test(path)) for (const method of entry.methods) allowed.add(method);
    }
    return [...allowed].sort();
  }
}
