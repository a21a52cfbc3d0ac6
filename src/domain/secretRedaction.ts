/**
 * Passwords in URLs must never reach a log line, an error message or printed configuration. Pure string
 * functions, so every layer (logging, configuration, database, CLI) can use them without depending on another.
 */

// The password runs to the last '@' of the authority: an unencoded '@' in it (which node-postgres accepts) is part
// of the password, not the end of it.
const PASSWORD_IN_URL = /^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):([^/?#]*)@/i;
const PASSWORDS_IN_TEXT = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^/?#\s]*)@/gi;
// Query parameters that carry credentials (node-postgres honours ?password=; libpq has sslpassword).
const SECRET_PARAMETERS =
  /([?&](?:password|passwd|pass|pwd|sslpassword|secret|token|access_token|api_key|apikey)=)[^&#\s"']*/gi;

/** Replaces the password of any URL-shaped string, and credentials in its query, with `***`. */
export function redactUrl(url: string): string {
  return url.replace(PASSWORD_IN_URL, '$1:***@').replace(SECRET_PARAMETERS, '$1***');
}

/** Redacts every URL password and credential query parameter inside free text (error messages, log lines). */
export function redactSecrets(text: string): string {
  return text.replace(PASSWORDS_IN_TEXT, '$1:***@').replace(SECRET_PARAMETERS, '$1***');
}
