/**
 * Passwords in URLs must never reach a log line, an error message or printed configuration. Pure string
 * functions, so every layer (logging, configuration, database, CLI) can use them without depending on another.
 */

const PASSWORD_IN_URL = /^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):([^@/?#]*)@/i;

/** Replaces the password of any URL-shaped string with `***`. Leaves other strings untouched. */
export function redactUrl(url: string): string {
  return url.replace(PASSWORD_IN_URL, '$1:***@');
}

/** Redacts every URL with a password inside free text (error messages, log lines). */
export function redactSecrets(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi, '$1:***@');
}
