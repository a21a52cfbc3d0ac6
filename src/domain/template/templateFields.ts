/**
 * Readers for template values: each checks one value, reports what is wrong with it at its path, and returns
 * the value when it is usable (undefined when it is not, so the caller can go on and find more problems).
 */
import { BACKOFF_STRATEGIES } from './taskTemplate.ts';
import type { BackoffStrategy, RetryPolicy } from './taskTemplate.ts';
import { closestMatch } from './suggest.ts';
import type { Path, TemplateSource } from './templateSource.ts';

export type Mapping = Record<string, unknown>;

export function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a found value is shown in a message. */
export function describeFound(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return typeof value;
}

/** The keys a mapping may have; `unsupported` are tasker-core keys this Tasker knows but does not implement. */
export interface KeySpec {
  allowed: readonly string[];
  unsupported?: Readonly<Record<string, string>>;
}

export function checkKeys(source: TemplateSource, map: Mapping, path: Path, spec: KeySpec): void {
  for (const key of Object.keys(map)) {
    if (spec.allowed.includes(key)) continue;
    const reason = spec.unsupported?.[key];
    if (reason !== undefined) {
      source.report(
        [...path, key],
        `"${key}" is a tasker-core template key this version of Tasker does not support: ${reason}`,
        `remove ${key}`,
        'key',
      );
      continue;
    }
    const suggestion = closestMatch(key, spec.allowed);
    const allowed = `keys allowed here: ${spec.allowed.join(', ')}`;
    source.report(
      [...path, key],
      `unknown key "${key}"`,
      suggestion === undefined ? `remove it; ${allowed}` : `did you mean "${suggestion}"? (${allowed})`,
      'key',
    );
  }
}

/** A mapping, or undefined (reported) when the value is something else. Absent and null read as absent. */
export function readMapping(
  source: TemplateSource,
  value: unknown,
  path: Path,
  hint: string,
): Mapping | undefined {
  if (value === undefined || value === null) return undefined;
  if (isMapping(value)) return value;
  source.report(path, `must be a mapping of keys to values, found ${describeFound(value)}`, hint);
  return undefined;
}

export function readString(
  source: TemplateSource,
  value: unknown,
  path: Path,
  hint: string,
): string | undefined {
  if (typeof value === 'string') return value;
  source.report(path, `must be a string, found ${describeFound(value)}`, hint);
  return undefined;
}

/** A string or null; absent reads as null. */
export function readOptionalString(source: TemplateSource, value: unknown, path: Path): string | null {
  if (value === undefined || value === null) return null;
  return readString(source, value, path, 'write text, or leave the key out') ?? null;
}

export function readInteger(
  source: TemplateSource,
  value: unknown,
  path: Path,
  range: { min: number; max?: number },
  hint: string,
): number | undefined {
  const bounds = range.max === undefined ? `of at least ${range.min}` : `from ${range.min} to ${range.max}`;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < range.min) {
    source.report(path, `must be a whole number ${bounds}, found ${describeFound(value)}`, hint);
    return undefined;
  }
  if (range.max !== undefined && value > range.max) {
    source.report(path, `must be a whole number ${bounds}, found ${describeFound(value)}`, hint);
    return undefined;
  }
  return value;
}

export function readChoice<T extends string>(
  source: TemplateSource,
  value: unknown,
  path: Path,
  choices: readonly T[],
): T | undefined {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  const suggestion = typeof value === 'string' ? closestMatch(value, choices) : undefined;
  source.report(
    path,
    `must be one of ${choices.join(', ')}; found ${describeFound(value)}`,
    suggestion === undefined ? `use one of ${choices.join(', ')}` : `did you mean "${suggestion}"?`,
  );
  return undefined;
}

const DEFAULT_RETRY: Readonly<RetryPolicy> = {
  retryable: true,
  maxAttempts: 3,
  backoff: 'exponential',
  backoffBaseMs: 1000,
  maxBackoffMs: 30_000,
};

const RETRY_LIMITS = {
  maxAttempts: { min: 1, max: 100 },
  backoffBaseMs: { min: 0, max: 3_600_000 },
  maxBackoffMs: { max: 86_400_000 },
} as const;

const RETRY_KEYS: readonly string[] = [
  'retryable',
  'max_attempts',
  'backoff',
  'backoff_base_ms',
  'max_backoff_ms',
];

/**
 * A `retry` block with defaults for what it leaves out. `retryable: false` with `max_attempts` above 1 is
 * accepted as written: the step runs once (failures are not retried) and the value is kept for when the
 * block is edited back.
 */
export function readRetry(source: TemplateSource, value: unknown, path: Path): RetryPolicy {
  const map = readMapping(source, value, path, 'write retry: {max_attempts: 3, backoff: exponential}');
  if (map === undefined) return { ...DEFAULT_RETRY };
  checkKeys(source, map, path, { allowed: RETRY_KEYS });
  const retry = { ...DEFAULT_RETRY };
  if (map['retryable'] !== undefined) {
    if (typeof map['retryable'] === 'boolean') retry.retryable = map['retryable'];
    else
      source.report(
        [...path, 'retryable'],
        `must be true or false, found ${describeFound(map['retryable'])}`,
        'write retryable: true or retryable: false (without quotes)',
      );
  }
  if (map['max_attempts'] !== undefined) {
    retry.maxAttempts =
      readInteger(
        source,
        map['max_attempts'],
        [...path, 'max_attempts'],
        RETRY_LIMITS.maxAttempts,
        'max_attempts counts every run, the first included: use 1 for a single run without retries, at most 100',
      ) ?? retry.maxAttempts;
  }
  if (map['backoff'] !== undefined) {
    retry.backoff =
      readChoice<BackoffStrategy>(source, map['backoff'], [...path, 'backoff'], BACKOFF_STRATEGIES) ??
      retry.backoff;
  }
  const base =
    map['backoff_base_ms'] === undefined
      ? undefined
      : readInteger(
          source,
          map['backoff_base_ms'],
          [...path, 'backoff_base_ms'],
          RETRY_LIMITS.backoffBaseMs,
          'the delay before the first retry in milliseconds, at most 3600000 (one hour)',
        );
  const max =
    map['max_backoff_ms'] === undefined
      ? undefined
      : readInteger(
          source,
          map['max_backoff_ms'],
          [...path, 'max_backoff_ms'],
          { min: 0, max: RETRY_LIMITS.maxBackoffMs.max },
          'the longest delay between retries in milliseconds, at most 86400000 (one day)',
        );
  if (base !== undefined) retry.backoffBaseMs = base;
  if (max !== undefined) retry.maxBackoffMs = max;
  const baseValid = map['backoff_base_ms'] === undefined || base !== undefined;
  const maxValid = map['max_backoff_ms'] === undefined || max !== undefined;
  if (baseValid && maxValid && retry.maxBackoffMs < retry.backoffBaseMs) {
    if (max !== undefined) {
      source.report(
        [...path, 'max_backoff_ms'],
        `must be at least backoff_base_ms (${retry.backoffBaseMs}), found ${retry.maxBackoffMs}`,
        `raise max_backoff_ms to ${retry.backoffBaseMs} or more, or lower backoff_base_ms`,
      );
    } else {
      source.report(
        [...path, 'backoff_base_ms'],
        `must not exceed max_backoff_ms (${retry.maxBackoffMs}, the default), found ${retry.backoffBaseMs}`,
        `also set max_backoff_ms to ${retry.backoffBaseMs} or more, or lower backoff_base_ms`,
      );
    }
  }
  return retry;
}

const TIMEOUT_LIMITS = { min: 1, max: 86_400 } as const;

/** `timeout_seconds`: absent or null means the worker's default handler timeout. */
export function readTimeout(source: TemplateSource, value: unknown, path: Path): number | null {
  if (value === undefined || value === null) return null;
  return (
    readInteger(
      source,
      value,
      path,
      TIMEOUT_LIMITS,
      'whole seconds from 1 to 86400 (one day); leave it out to use the worker default (worker.handler_timeout_ms)',
    ) ?? null
  );
}

/** `handler.initialization`: any mapping, handed to the handler as `ctx.config`. */
export function readInitialization(source: TemplateSource, value: unknown, path: Path): Mapping {
  return (
    readMapping(
      source,
      value,
      path,
      'write initialization as a mapping, e.g. initialization: {gateway: stripe}',
    ) ?? {}
  );
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
/** PGMQ queue names are at most 47 characters and ours are `worker_<namespace>_queue` (13 more). */
export const MAX_NAMESPACE_LENGTH = 34;
export const MAX_TEMPLATE_NAME_LENGTH = 64;
export const MAX_STEP_NAME_LENGTH = 128;

/** A name Tasker accepts for `value`: lowercase, other characters as underscores, cut to fit. */
function identifierLike(value: string, max: number): string {
  const cleaned = value
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '');
  return (/^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned).slice(0, max);
}

/** A template, namespace or step name: required, 1-`max` characters of `[a-z0-9_]`, not starting with a digit. */
export function readIdentifier(
  source: TemplateSource,
  value: unknown,
  path: Path,
  rule: { max: number; example: string; why?: string },
): string | undefined {
  const key = String(path[path.length - 1]);
  if (value === undefined || value === null) {
    source.report(path, `required key "${key}" is missing`, `add ${key}: ${rule.example}`);
    return undefined;
  }
  const text = readString(source, value, path, `write ${key}: ${rule.example}`);
  if (text === undefined) return undefined;
  if (text.length >= 1 && text.length <= rule.max && IDENTIFIER.test(text)) return text;
  // Reported, but still returned: a misspelt step name must not also produce "unknown step" problems.
  const suggestion = identifierLike(text, rule.max);
  source.report(
    path,
    `must be 1-${rule.max} characters of lowercase letters, digits and underscores, not starting with a digit, found ${describeFound(text)}${text.length > rule.max ? ` (${text.length} characters)` : ''}${rule.why === undefined ? '' : `: ${rule.why}`}`,
    `rename it, e.g. ${key}: ${suggestion === '' || suggestion === text ? rule.example : suggestion}`,
  );
  return text;
}
