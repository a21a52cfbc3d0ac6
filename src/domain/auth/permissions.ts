/**
 * The permissions of the Tasker API: the one list (tasker-core §9.5's seventeen `resource:action` strings),
 * what a grant string may look like, and how grants match a needed permission. The configuration, the
 * verifier, the routes, the OpenAPI document and `tasker auth show-permissions` all read them from here.
 */

export const PERMISSIONS = [
  'tasks:create',
  'tasks:read',
  'tasks:list',
  'tasks:cancel',
  'tasks:context_read',
  'steps:read',
  'steps:resolve',
  'dlq:read',
  'dlq:update',
  'dlq:stats',
  'templates:read',
  'templates:validate',
  'system:config_read',
  'system:handlers_read',
  'system:analytics_read',
  'worker:config_read',
  'worker:templates_read',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

const KNOWN = new Set<string>(PERMISSIONS);
const RESOURCES = new Set(PERMISSIONS.map((p) => p.slice(0, p.indexOf(':'))));

/** What a grant looks like before its meaning is checked: `resource:action` or `resource:*`. */
export const PERMISSION_SYNTAX = /^([a-z][a-z_]*:([a-z][a-z_]*|\*)|\*)$/;

/** Why a grant string is not usable, or undefined when it grants something. */
export function grantProblem(grant: string): string | undefined {
  if (grant === '*') {
    // A global wildcard would silently include every permission added later: grants must be listed.
    return 'the global wildcard "*" is refused: list the permissions, or use resource wildcards such as "tasks:*"';
  }
  if (KNOWN.has(grant)) return undefined;
  const [resource, action] = grant.split(':');
  if (action === '*' && resource !== undefined && RESOURCES.has(resource)) return undefined;
  return `unknown permission ${JSON.stringify(grant)}; known: ${[...RESOURCES].map((r) => `${r}:*`).join(', ')} and the ${PERMISSIONS.length} listed by \`tasker auth show-permissions\``;
}

/**
 * A credential's grants, compiled once so each request checks membership in a Set. Unusable strings grant
 * nothing; `unknown` keeps them, so a strict verifier can refuse the credential.
 */
export class PermissionSet {
  private readonly exact = new Set<string>();
  private readonly resources = new Set<string>();
  readonly unknown: readonly string[];

  constructor(grants: readonly string[]) {
    const unknown: string[] = [];
    for (const grant of grants) {
      if (grantProblem(grant) !== undefined) unknown.push(grant);
      else if (grant.endsWith(':*')) this.resources.add(grant.slice(0, -2));
      else this.exact.add(grant);
    }
    this.unknown = unknown;
  }

  has(permission: Permission): boolean {
    return this.exact.has(permission) || this.resources.has(permission.slice(0, permission.indexOf(':')));
  }

  /** The permissions granted, wildcards expanded, for messages. */
  list(): Permission[] {
    return PERMISSIONS.filter((permission) => this.has(permission));
  }
}
