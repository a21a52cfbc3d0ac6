/** GET /v1/templates and /v1/templates/{namespace}/{name}/{version} against registered templates. */
import { describe, expect, it } from 'vitest';
import { useApi } from './apiHarness.ts';
import { apiTemplates } from './apiFixtures.ts';
import type { ErrorBody } from './viewTypes.ts';

const getApi = useApi({ engine: false, templates: apiTemplates() });

interface TemplateSummary {
  namespace: string;
  name: string;
  version: string;
  description: string | null;
  step_count: number;
  identity_strategy: string;
  registered_at: string;
}

describe('GET /v1/templates', () => {
  it('lists every registered template with its step count and identity strategy', async () => {
    const response = await getApi().get<{ templates: TemplateSummary[] }>('/v1/templates');
    expect(response.status).toBe(200);
    const expected = apiTemplates()
      .map((t) => `${t.namespace}/${t.name}/${t.version} ${t.steps.length} ${t.identityStrategy}`)
      .sort();
    expect(
      response.body.templates
        .map((t) => `${t.namespace}/${t.name}/${t.version} ${t.step_count} ${t.identity_strategy}`)
        .sort(),
    ).toEqual(expected);
    const diamond = response.body.templates.find((t) => t.name === 'diamond_pattern');
    expect(diamond?.description).toBe('Fan out to two branches and join them');
    expect(Date.now() - Date.parse(diamond?.registered_at ?? '')).toBeLessThan(120_000);
  });

  it('filters by namespace', async () => {
    const response = await getApi().get<{ templates: TemplateSummary[] }>(
      '/v1/templates?namespace=resilience',
    );
    expect(response.body.templates.map((t) => t.name).sort()).toEqual(
      apiTemplates()
        .filter((t) => t.namespace === 'resilience')
        .map((t) => t.name)
        .sort(),
    );
    const none = await getApi().get<{ templates: TemplateSummary[] }>('/v1/templates?namespace=nothing_here');
    expect(none.body.templates).toEqual([]);
  });

  it('shows one template whole: steps with handler, dependencies, retry, timeout, and the input schema', async () => {
    const response = await getApi().get<Record<string, unknown>>('/v1/templates/math/diamond_pattern/1.0.0');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      namespace: 'math',
      name: 'diamond_pattern',
      version: '1.0.0',
      identity_strategy: 'always_unique',
      step_count: 4,
      input_schema: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
    });
    const steps = response.body.steps as Record<string, unknown>[];
    expect(steps.map((s) => s.name)).toEqual([
      'diamond_start',
      'diamond_branch_b',
      'diamond_branch_c',
      'diamond_end',
    ]);
    expect(steps[3]).toEqual({
      name: 'diamond_end',
      description: null,
      handler: { callable: 'Math.Sum', initialization: { of: ['diamond_branch_b', 'diamond_branch_c'] } },
      dependencies: ['diamond_branch_b', 'diamond_branch_c'],
      retry: {
        retryable: true,
        max_attempts: 3,
        backoff: 'exponential',
        backoff_base_ms: 1000,
        max_backoff_ms: 30000,
      },
      timeout_seconds: null,
    });
    const retrying = await getApi().get<{ steps: { retry: Record<string, unknown> }[] }>(
      '/v1/templates/resilience/always_fails/1.0.0',
    );
    expect(retrying.body.steps[0]?.retry).toEqual({
      retryable: true,
      max_attempts: 3,
      backoff: 'fixed',
      backoff_base_ms: 150,
      max_backoff_ms: 1000,
    });
  });

  it('404 TASKER_TEMPLATE_NOT_FOUND naming the versions that are registered', async () => {
    const api = getApi();
    const wrongVersion = await api.get<ErrorBody>('/v1/templates/api_ops/strict_echo/9.9.9');
    expect(wrongVersion.status).toBe(404);
    expect(wrongVersion.body.error.code).toBe('TASKER_TEMPLATE_NOT_FOUND');
    expect(wrongVersion.body.error.message).toMatch(
      /registered versions: (2\.0\.0, 1\.0\.0|1\.0\.0, 2\.0\.0)/,
    );
    const unknown = await api.get<ErrorBody>('/v1/templates/math/no_such_thing/1.0.0');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details?.versions).toEqual([]);
    expect(unknown.body.error.message).toContain('GET /v1/templates');
  });

  it('400 for a namespace, name or version that cannot exist', async () => {
    const api = getApi();
    const upper = await api.get<ErrorBody>('/v1/templates/Math/diamond_pattern/1.0.0');
    expect(upper.status).toBe(400);
    expect(upper.body.error.details?.fields).toEqual([
      expect.objectContaining({ field: 'namespace', location: 'path' }),
    ]);
    const version = await api.get<ErrorBody>('/v1/templates/math/diamond_pattern/latest');
    expect(version.status).toBe(400);
    expect(version.body.error.message).toContain('version must match');
  });
});
