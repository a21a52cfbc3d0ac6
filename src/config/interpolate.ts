import type { ConfigProblem } from '../domain/errors.ts';

/** `${VAR}` or `${VAR:-default}`; the default may be empty and may contain anything but `}`. */
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

export interface InterpolationContext {
  env: Readonly<Record<string, string | undefined>>;
  source: string;
  problems: ConfigProblem[];
  /** Paths whose value was one whole reference: typed by the schema later (a port stays a number). */
  wholeReferences?: Set<string>;
}

/**
 * Replaces variable references in every string value of a parsed TOML tree. It runs on parsed values, not
 * on the file text, so a variable's value can never inject TOML. A value that is one whole reference is
 * recorded in `wholeReferences`, so the loader can give it the type its key expects
 * (`max_connections = "${POOL:-50}"` becomes 50, `service_name = "${NAME}"` stays a string).
 */
export function interpolate(value: unknown, path: string, context: InterpolationContext): unknown {
  if (typeof value === 'string') return interpolateString(value, path, context);
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, `${path}[${i}]`, context));
  if (isPlainObject(value)) {
    const result: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      result[key] = interpolate(child, path === '' ? key : `${path}.${key}`, context);
    }
    return result;
  }
  return value;
}

function interpolateString(value: string, path: string, context: InterpolationContext): unknown {
  if (!value.includes('${')) return value;
  const replaced = value.replace(REFERENCE, (_match, name: string, fallback: string | undefined) => {
    const fromEnv = context.env[name];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    if (fallback !== undefined) return fallback;
    context.problems.push({
      source: context.source,
      path,
      message: `environment variable ${name} is not set (or is empty) and has no default: set it, or write \${${name}:-default}`,
    });
    return '';
  });
  if (WHOLE_REFERENCE.test(value)) context.wholeReferences?.add(path);
  return replaced;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}
