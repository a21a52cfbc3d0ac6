/**
 * The `pretty` log format: one human-readable line per event, for a person reading a terminal —
 * `12:04:05.123 INFO  worker  step failed  task=… step=validate_order attempt=2`.
 * pino serializes each event to JSON first (its redaction, serializers and child bindings all apply); this
 * turns that line into the compact form, so both formats carry the same fields.
 */

const LEVEL_LABELS: Record<string, string> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO ',
  warn: 'WARN ',
  error: 'ERROR',
  fatal: 'FATAL',
};

/** Fields every line has, shown in the line's fixed columns or left out as noise for a reader. */
const FIXED_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'component', 'msg']);

function timeOfDay(time: unknown): string {
  const date = typeof time === 'number' ? new Date(time) : new Date();
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Bare when it reads unambiguously, JSON-quoted when it has spaces, quotes or `=`; objects as JSON. */
function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/**
 * One JSON log line (pino's output, newline included or not) as a pretty line ending in a newline. An error's
 * stack (pino's `err` serializer) follows on its own indented lines: a stack squeezed into one field is
 * unreadable. A line that is not a JSON object passes through unchanged.
 */
export function prettyLogLine(jsonLine: string): string {
  let event: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(jsonLine);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return jsonLine;
    event = parsed as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const level = typeof event.level === 'string' ? event.level : String(event.level);
  const name = typeof event.name === 'string' ? event.name.replace(/^tasker-/, '') : '';
  const component =
    typeof event.component === 'string' && event.component !== name
      ? `${name}${name === '' ? '' : '/'}${event.component}`
      : name;
  let stack: string | undefined;
  const fields: string[] = [];
  for (const [key, value] of Object.entries(event)) {
    if (FIXED_FIELDS.has(key) || value === undefined) continue;
    if (key === 'err' && typeof value === 'object' && value !== null) {
      const { stack: errStack, message, type, ...rest } = value as Record<string, unknown>;
      if (typeof errStack === 'string') stack = errStack;
      fields.push(`err=${fieldValue(message ?? type)}`);
      if (Object.keys(rest).length > 0) fields.push(`err_fields=${fieldValue(rest)}`);
      continue;
    }
    fields.push(`${key}=${fieldValue(value)}`);
  }
  const msg = typeof event.msg === 'string' ? event.msg : '';
  const head = [timeOfDay(event.time), LEVEL_LABELS[level] ?? level.toUpperCase(), component.padEnd(13), msg]
    .filter((part) => part !== '')
    .join(' ');
  const line = fields.length > 0 ? `${head}  ${fields.join(' ')}` : head;
  const stackLines =
    stack === undefined
      ? ''
      : `\n${stack
          .split('\n')
          .map((l) => `    ${l.trim()}`)
          .join('\n')}`;
  return `${line}${stackLines}\n`;
}
