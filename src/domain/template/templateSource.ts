/**
 * One template file's YAML: the plain value to validate, and the problems found in it, each placed at the
 * line and column of the YAML node it is about.
 */
import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Pair } from 'yaml';
import type { TemplateProblem } from './templateError.ts';

type PathKey = string | number;
export type Path = readonly PathKey[];

/** `steps[2].retry.max_attempts`; keys that are not identifiers are quoted: `input_schema.properties["e-mail"]`. */
function formatPath(path: Path): string {
  return path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return `${text}[${JSON.stringify(key)}]`;
    return text === '' ? key : `${text}.${key}`;
  }, '');
}

/** Where a problem points: the value at the path, or the key naming it (for unknown keys). */
export type Anchor = 'value' | 'key';

function keyText(pair: Pair): string | undefined {
  if (!isScalar(pair.key)) return undefined;
  const value = pair.key.value;
  // With merge keys enabled the parser gives `<<` as Symbol('<<').
  return typeof value === 'symbol' ? value.description : String(value);
}

/**
 * A template given as data rather than YAML text (a workflow defined in TypeScript): its problems have no
 * line or column, and `describePath` names their place in the words of whoever wrote the data.
 */
export interface TemplateValue {
  value: unknown;
  /** @defaultValue formatPath (YAML paths such as `steps[2].retry.max_attempts`) */
  describePath?: (path: Path) => string;
}

export class TemplateSource {
  readonly problems: TemplateProblem[] = [];
  /** The document as plain data; undefined when the YAML itself is broken (those problems are recorded). */
  readonly value: unknown;
  /** Undefined for a template given as data: there are no positions to report. */
  private readonly document: Document.Parsed | undefined;
  private readonly lines = new LineCounter();
  private readonly describePath: (path: Path) => string;

  constructor(
    readonly file: string,
    input: string | TemplateValue,
  ) {
    if (typeof input !== 'string') {
      this.document = undefined;
      this.value = input.value;
      this.describePath = input.describePath ?? formatPath;
      return;
    }
    this.describePath = formatPath;
    const text = input;
    // Merge keys (`<<: *retry_defaults`) let templates share blocks; duplicate keys are errors.
    this.document = parseDocument(text, {
      lineCounter: this.lines,
      prettyErrors: false,
      merge: true,
      uniqueKeys: true,
    });
    const broken = [...this.document.errors, ...this.document.warnings];
    for (const error of broken) {
      this.problems.push({
        ...this.placeOffset(error.pos[0]),
        file,
        path: '',
        message: `YAML syntax error: ${error.message}`,
        hint: yamlHint(error.code),
      });
    }
    if (broken.length > 0) return;
    try {
      this.value = this.document.toJS({ maxAliasCount: 100 });
    } catch (error) {
      this.problems.push({
        file,
        path: '',
        line: null,
        column: null,
        message: `YAML cannot be read: ${error instanceof Error ? error.message : String(error)}`,
        hint: 'use fewer aliases (*name); a template needs no more than a few',
      });
    }
  }

  /** The first YAML error, to pass on as the `cause` of the TemplateError. */
  get yamlError(): Error | undefined {
    return this.document?.errors[0];
  }

  report(path: Path, message: string, hint: string, anchor: Anchor = 'value'): void {
    this.problems.push({
      ...this.placeOffset(this.offsetOf(path, anchor)),
      file: this.file,
      path: this.describePath(path),
      message,
      hint,
    });
  }

  /** 1-based line and column of an offset into the text. */
  private placeOffset(offset: number | undefined): { line: number | null; column: number | null } {
    if (offset === undefined) return { line: null, column: null };
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * The offset of the node at `path`, or of its nearest ancestor that exists (a missing key points at the
   * mapping that lacks it). An empty value (`name:`) points at its key.
   */
  private offsetOf(path: Path, anchor: Anchor): number | undefined {
    if (this.document === undefined) return undefined;
    let node: unknown = this.document.contents;
    let offset = isNode(node) ? node.range?.[0] : undefined;
    for (const [index, key] of path.entries()) {
      if (isAlias(node)) node = node.resolve(this.document);
      const last = index === path.length - 1;
      if (isMap(node) && typeof key === 'string') {
        const pair = findPair(node.items, key, this.document);
        if (pair === undefined) return offset;
        const keyOffset = isNode(pair.key) ? pair.key.range?.[0] : undefined;
        if (last && anchor === 'key') return keyOffset ?? offset;
        node = pair.value;
        const empty = node === null || (isScalar(node) && node.value === null);
        offset = (empty ? keyOffset : isNode(node) ? node.range?.[0] : undefined) ?? keyOffset ?? offset;
      } else if (isSeq(node) && typeof key === 'number') {
        node = node.items[key];
        if (!isNode(node)) return offset;
        offset = node.range?.[0] ?? offset;
      } else {
        return offset;
      }
    }
    return offset;
  }
}

/** The pair for `key`, looking through `<<` merge keys (whose values may be aliases or lists of them). */
function findPair(items: readonly Pair[], key: string, document: Document.Parsed): Pair | undefined {
  const direct = items.find((pair) => keyText(pair) === key);
  if (direct !== undefined) return direct;
  for (const pair of items) {
    if (keyText(pair) !== '<<') continue;
    const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (let source of sources) {
      if (isAlias(source)) source = source.resolve(document);
      if (!isMap(source)) continue;
      const merged = findPair(source.items, key, document);
      if (merged !== undefined) return merged;
    }
  }
  return undefined;
}

function yamlHint(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'remove one of the two entries with this key';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
    case 'UNEXPECTED_TOKEN':
    case 'BLOCK_AS_IMPLICIT_KEY':
      return 'check the indentation (spaces, not tabs) and that every "key: value" has its colon and a space';
    case 'MULTIPLE_DOCS':
      return 'put one template in each file (remove the --- separator)';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    default:
      return 'fix the YAML at this position (quote values that contain ": " or start with a special character)';
  }
}
