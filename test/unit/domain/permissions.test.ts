import { describe, expect, it } from 'vitest';
import { grantProblem, PERMISSIONS, PermissionSet } from '../../../src/domain/auth/permissions.ts';

describe('permissions', () => {
  it('are the seventeen resource:action strings of tasker-core §9.5', () => {
    expect([...PERMISSIONS].sort()).toEqual(
      [
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
      ].sort(),
    );
  });

  it('grant exactly what they name', () => {
    const set = new PermissionSet(['tasks:read', 'dlq:stats']);
    expect(set.has('tasks:read')).toBe(true);
    expect(set.has('dlq:stats')).toBe(true);
    expect(set.has('tasks:create')).toBe(false);
    expect(set.has('dlq:read')).toBe(false);
    expect(set.list()).toEqual(['tasks:read', 'dlq:stats']);
    expect(set.unknown).toEqual([]);
  });

  it('resource wildcards grant every action of their resource and nothing else', () => {
    const set = new PermissionSet(['tasks:*']);
    for (const permission of PERMISSIONS)
      expect(set.has(permission), permission).toBe(permission.startsWith('tasks:'));
  });

  it('the global wildcard, unknown permissions and unknown resources grant nothing and are reported', () => {
    const set = new PermissionSet(['*', 'tasks:delete', 'admin:*', 'tasks', 'TASKS:READ']);
    expect(PERMISSIONS.filter((p) => set.has(p))).toEqual([]);
    expect(set.unknown).toEqual(['*', 'tasks:delete', 'admin:*', 'tasks', 'TASKS:READ']);
    expect(grantProblem('*')).toMatch(/global wildcard "\*" is refused/);
    expect(grantProblem('tasks:delete')).toMatch(/unknown permission "tasks:delete"/);
    expect(grantProblem('worker:*')).toBeUndefined();
    expect(grantProblem('steps:resolve')).toBeUndefined();
  });

  it('an action of one resource does not match a same-named action of another', () => {
    const set = new PermissionSet(['system:config_read']);
    expect(set.has('worker:config_read')).toBe(false);
    expect(set.has('system:config_read')).toBe(true);
  });
});
