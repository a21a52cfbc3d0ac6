import { redactUrl } from '../domain/secretRedaction.ts';
import { configSchema } from './schema.ts';
import type { TaskerConfig } from './schema.ts';
import { childSchema, keyDocs, unwrap } from './schemaBuilder.ts';
import type { z } from 'zod';

function redactValue(value: unknown): unknown {
  if (typeof value !== 'string') return '***';
  // An unset secret (empty) hides nothing; showing it empty says it is unset.
  if (value === '') return value;
  const redacted = redactUrl(value);
  return redacted === value && !/^[a-z][a-z0-9+.-]*:/i.test(value) ? '***' : redacted;
}

function redactNode(value: unknown, schema: z.ZodType | undefined): unknown {
  if (schema !== undefined && keyDocs.get(unwrap(schema))?.secret === true) return redactValue(value);
  // Arrays of tables (api_keys) hold secrets in their entries.
  if (Array.isArray(value)) {
    const element = schema === undefined ? undefined : childSchema(schema, 0);
    return element === undefined ? value : value.map((item) => redactNode(item, element));
  }
  if (typeof value !== 'object' || value === null) return value;
  const result: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    result[key] = redactNode(child, schema === undefined ? undefined : childSchema(schema, key));
  }
  return result;
}

/**
 * A copy safe to print: keys marked secret in the schema lose their password (URLs) or their whole value.
 * URLs keep host and database so an operator can still see where Tasker points.
 */
export function redactConfig(config: TaskerConfig): TaskerConfig {
  return redactNode(config, configSchema) as TaskerConfig;
}
