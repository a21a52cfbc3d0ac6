/**
 * Where tests find PostgreSQL. TEST_DATABASE_URL (or DATABASE_URL) names the server; tests create and drop
 * their own databases on it and never touch the database the URL names.
 */
export const SERVER_URL =
  process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export const ADMIN_URL = databaseUrl('postgres');
