/** Helpers for connection strings that must never print a password. */

const PASSWORD_IN_URL = /^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):([^@/?#]*)@/i;

/** Replaces the password of any URL-shaped string with `***`. Leaves other strings untouched. */
export function redactUrl(url: string): string {
  return url.replace(PASSWORD_IN_URL, '$1:***@');
}

/** Redacts every URL with a password inside free text (error messages, log lines). */
export function redactSecrets(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi, '$1:***@');
}

export const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/tasker_development';

export function isPgliteUrl(url: string): boolean {
  return url.startsWith('pglite:');
}
