/**
 * Just enough PromQL reading to check alert rules against what Tasker exports: the vector selectors of an
 * expression (metric name and label matchers). Function and aggregation names, keywords, the label lists of
 * `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`, strings, numbers, durations and range brackets
 * are skipped. A construct it cannot read (a selector without a metric name, an unbalanced bracket) throws,
 * so a rule is never checked as if it used no metric.
 */

interface LabelMatcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface VectorSelector {
  metric: string;
  matchers: LabelMatcher[];
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2']);
/** Aggregation operators: `sum by (job) (x)` has its modifier between the name and the parenthesis. */
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
/** Followed by a parenthesized list of label names, never metrics. */
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

const IDENT_START = /[a-zA-Z_:]/;
const IDENT_PART = /[a-zA-Z0-9_:]/;

function readString(expr: string, start: number): { value: string; end: number } {
  const quote = expr[start];
  let value = '';
  let i = start + 1;
  while (i < expr.length && expr[i] !== quote) {
    if (expr[i] === '\\' && quote !== '`') {
      value += expr[i + 1] ?? '';
      i += 2;
    } else {
      value += expr[i];
      i += 1;
    }
  }
  if (i >= expr.length) throw new Error(`unterminated string at ${start} in: ${expr}`);
  return { value, end: i + 1 };
}

function skipSpace(expr: string, start: number): number {
  let i = start;
  while (i < expr.length && /\s/.test(expr[i] ?? '')) i += 1;
  return i;
}

/** The index just past the bracket that closes the one at `start`. */
function skipBalanced(expr: string, start: number, open: string, close: string): number {
  let depth = 0;
  for (let i = start; i < expr.length; i++) {
    const c = expr[i];
    if (c === '"' || c === "'" || c === '`') {
      i = readString(expr, i).end - 1;
    } else if (c === open) {
      depth += 1;
    } else if (c === close) {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
  }
  throw new Error(`unbalanced ${open} at ${start} in: ${expr}`);
}

function readMatchers(expr: string, start: number): { matchers: LabelMatcher[]; end: number } {
  const matchers: LabelMatcher[] = [];
  let i = start + 1;
  for (;;) {
    i = skipSpace(expr, i);
    if (expr[i] === '}') return { matchers, end: i + 1 };
    const nameStart = i;
    while (i < expr.length && IDENT_PART.test(expr[i] ?? '')) i += 1;
    const label = expr.slice(nameStart, i);
    i = skipSpace(expr, i);
    const op = (['=~', '!~', '!=', '='] as const).find((candidate) => expr.startsWith(candidate, i));
    if (label === '' || op === undefined)
      throw new Error(`cannot read the label matcher at ${i} in: ${expr}`);
    i = skipSpace(expr, i + op.length);
    if (!['"', "'", '`'].includes(expr[i] ?? '')) throw new Error(`expected a string at ${i} in: ${expr}`);
    const { value, end } = readString(expr, i);
    matchers.push({ label, op, value });
    i = skipSpace(expr, end);
    if (expr[i] === ',') i += 1;
  }
}

function isAggregation(expr: string, word: string, next: number): boolean {
  return AGGREGATIONS.has(word.toLowerCase()) && /^(by|without)\s*\(/i.test(expr.slice(next));
}

/** Every vector selector in `expr`, in order of appearance. */
export function vectorSelectors(expr: string): VectorSelector[] {
  const selectors: VectorSelector[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i] ?? '';
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i += 1;
    } else if (c === '"' || c === "'" || c === '`') {
      i = readString(expr, i).end;
    } else if (c === '[') {
      i = skipBalanced(expr, i, '[', ']'); // a range or subquery duration
    } else if (c === '{') {
      throw new Error(`a selector without a metric name at ${i} is not supported here: ${expr}`);
    } else if (/[0-9.]/.test(c)) {
      // A number or a duration (5m, 1h30m): digits, dots, exponents and unit letters.
      while (i < expr.length && /[0-9a-zA-Z.]/.test(expr[i] ?? '')) i += 1;
    } else if (IDENT_START.test(c)) {
      const start = i;
      while (i < expr.length && IDENT_PART.test(expr[i] ?? '')) i += 1;
      const word = expr.slice(start, i);
      const next = skipSpace(expr, i);
      if (LABEL_LIST_KEYWORDS.has(word.toLowerCase())) {
        if (expr[next] === '(') i = skipBalanced(expr, next, '(', ')');
      } else if (KEYWORDS.has(word.toLowerCase()) || expr[next] === '(' || isAggregation(expr, word, next)) {
        // an operator keyword, or a function / aggregation call whose arguments are read next
      } else {
        const selector: VectorSelector = { metric: word, matchers: [] };
        if (expr[next] === '{') {
          const { matchers, end } = readMatchers(expr, next);
          selector.matchers = matchers;
          i = end;
        }
        selectors.push(selector);
      }
    } else {
      i += 1;
    }
  }
  return selectors;
}

/** Series Prometheus stores for a metric family of this type, as exposed in the text format. */
function seriesNames(family: string, type: string): string[] {
  if (type === 'histogram') return [`${family}_bucket`, `${family}_sum`, `${family}_count`];
  if (type === 'summary') return [family, `${family}_sum`, `${family}_count`];
  return [family];
}

export interface ScrapedMetrics {
  /** Metric family → its `# TYPE`. */
  families: Map<string, string>;
  /** Series name → the label sets of its samples. */
  samples: Map<string, Record<string, string>[]>;
}

/** Reads a Prometheus text exposition (format 0.0.4). */
export function parseExposition(text: string): ScrapedMetrics {
  const families = new Map<string, string>();
  const samples = new Map<string, Record<string, string>[]>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type?.[1] !== undefined && type[2] !== undefined) {
      families.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s/.exec(line);
    if (sample?.[1] === undefined) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const match of (sample[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      if (match[1] !== undefined) labels[match[1]] = match[2] ?? '';
    }
    const list = samples.get(sample[1]) ?? [];
    list.push(labels);
    samples.set(sample[1], list);
  }
  return { families, samples };
}

/** Every series name a scrape exports: its samples, and every series of each declared family. */
export function exportedSeries(scraped: ScrapedMetrics): Set<string> {
  const names = new Set(scraped.samples.keys());
  for (const [family, type] of scraped.families)
    for (const name of seriesNames(family, type)) names.add(name);
  return names;
}
