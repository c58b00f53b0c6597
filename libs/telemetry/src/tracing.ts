/**
 * Starts the OpenTelemetry SDK when an OTLP endpoint is configured; without
 * one it does nothing. The SDK is imported only then: loading it costs every
 * process about 50 MB of memory, which a laptop run should not pay.
 */
export async function startTracing(service: string, endpoint: string | undefined): Promise<() => Promise<void>> {
  if (!endpoint) return async () => undefined;
  process.env.OTEL_SERVICE_NAME ??= `muse-${service}`;
  const [{ NodeSDK }, { OTLPTraceExporter }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
  ]);
  const sdk = new NodeSDK({
    traceExporter: new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }),
  });
  sdk.start();
  return () => sdk.shutdown();
}
