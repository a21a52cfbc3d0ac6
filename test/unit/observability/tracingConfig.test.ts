import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { ConfigError } from '../../../src/domain/errors.ts';

/** `[telemetry.tracing]` and the OpenTelemetry variables that override it (process.env is not read). */
describe('tracing configuration', () => {
  it('is off by default, with a local OTLP/HTTP collector and every trace kept', () => {
    const { config } = loadConfig({ env: { TASKER_ENV: 'test' } });
    expect(config.telemetry.service_name).toBe('tasker');
    expect(config.telemetry.tracing).toEqual({
      enabled: false,
      otlp_endpoint: 'http://127.0.0.1:4318',
      sample_ratio: 1,
    });
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME set the endpoint and service name', () => {
    const loaded = loadConfig({
      env: {
        TASKER_ENV: 'test',
        OTEL_EXPORTER_OTLP_ENDPOINT: ' https://collector.internal:4318 ',
        OTEL_SERVICE_NAME: 'billing-workflows',
      },
    });
    expect(loaded.config.telemetry.tracing.otlp_endpoint).toBe('https://collector.internal:4318');
    expect(loaded.config.telemetry.service_name).toBe('billing-workflows');
    expect(loaded.provenance.get('telemetry.tracing.otlp_endpoint')).toBe(
      'environment variable OTEL_EXPORTER_OTLP_ENDPOINT',
    );
    expect(loaded.provenance.get('telemetry.service_name')).toBe('environment variable OTEL_SERVICE_NAME');
  });

  it('an endpoint that is not an http(s) URL is refused, naming the variable and the key', () => {
    let error: unknown;
    try {
      loadConfig({ env: { TASKER_ENV: 'test', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.objectContaining({
        source: 'environment variable OTEL_EXPORTER_OTLP_ENDPOINT',
        path: 'telemetry.tracing.otlp_endpoint',
      }),
    ]);
  });
});
