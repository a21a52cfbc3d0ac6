/** `pglite:<dir>` (or `pglite:memory`) selects the embedded database; anything else is a PostgreSQL URL. */
export function isPgliteUrl(url: string): boolean {
  return url.startsWith('pglite:');
}
