/** "Did you mean" for misspelt keys and step names. */

/** Edits (insert, delete, substitute, swap two neighbours) turning `a` into `b`: "stroe" is one from "store". */
function editDistance(a: string, b: string): number {
  // Rows i-2, i-1 and i of the optimal-string-alignment table.
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (before[j - 2] ?? 0) + 1);
      }
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** `maxAttempts`, `Max-Attempts` and `max_attempts` all compare as `maxattempts`. */
function normalize(word: string): string {
  return word.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/**
 * The candidate `word` most likely meant, or undefined when none is close: the same word spelt in another
 * case or separator style, a prefix of four letters or more (`timeout` for `timeout_seconds`), or at most about one typo per three
 * letters (none in words shorter than three). Ties go to the earlier candidate.
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const wanted = normalize(word);
  if (wanted === '') return undefined;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const normalized = normalize(candidate);
    if (normalized === wanted) return candidate;
    // A shortened key (`timeout`) is nearer than a key with something added (`namespace` is not `name`).
    const shorter = Math.min(normalized.length, wanted.length);
    const distance =
      shorter >= 4 && normalized.startsWith(wanted)
        ? 1
        : shorter >= 4 && wanted.startsWith(normalized)
          ? 2
          : editDistance(wanted, normalized);
    if (best === undefined || distance < best.distance) best = { candidate, distance };
  }
  if (best === undefined) return undefined;
  // One- and two-letter words are too short for a typo to tell them apart from other short names.
  const tolerated = wanted.length < 3 ? 0 : Math.max(1, Math.floor(wanted.length / 3));
  return best.distance <= tolerated ? best.candidate : undefined;
}
