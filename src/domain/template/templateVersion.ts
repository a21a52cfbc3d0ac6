/**
 * Semantic version order (semver.org §11) for template versions, which the template parser accepts as
 * `MAJOR.MINOR.PATCH` with an optional pre-release (`-beta.1`) and build (`+sha`) suffix. A pre-release sorts
 * below its release; build metadata is ignored.
 */
function parts(version: string): { core: number[]; pre: string[] } {
  const withoutBuild = version.split('+', 1)[0] ?? '';
  const dash = withoutBuild.indexOf('-');
  const core = (dash === -1 ? withoutBuild : withoutBuild.slice(0, dash)).split('.').map(Number);
  const pre = dash === -1 ? [] : withoutBuild.slice(dash + 1).split('.');
  return { core, pre };
}

function compareIdentifiers(a: string, b: string): number {
  const numericA = /^\d+$/.test(a);
  const numericB = /^\d+$/.test(b);
  if (numericA && numericB) return Math.sign(Number(a) - Number(b));
  if (numericA !== numericB) return numericA ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Negative when `a` is older than `b`, positive when newer, 0 when equal in precedence. */
export function compareTemplateVersions(a: string, b: string): number {
  const left = parts(a);
  const right = parts(b);
  for (let i = 0; i < 3; i += 1) {
    const diff = (left.core[i] ?? 0) - (right.core[i] ?? 0);
    if (diff !== 0 && !Number.isNaN(diff)) return Math.sign(diff);
  }
  if (left.pre.length === 0 && right.pre.length === 0) return 0;
  if (left.pre.length === 0) return 1;
  if (right.pre.length === 0) return -1;
  for (let i = 0; i < Math.max(left.pre.length, right.pre.length); i += 1) {
    const x = left.pre[i];
    const y = right.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const diff = compareIdentifiers(x, y);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** The highest of `versions` in semantic version order, or undefined when there are none. */
export function latestTemplateVersion(versions: readonly string[]): string | undefined {
  return versions.reduce<string | undefined>(
    (best, version) => (best === undefined || compareTemplateVersions(version, best) > 0 ? version : best),
    undefined,
  );
}
