/**
 * Starts OpenTelemetry tracing when an OTLP endpoint is configured; without one it does nothing. The SDK is imported
 * only then, and only its tracing part (`@opentelemetry/sdk-trace-node`, the OTLP/HTTP trace exporter and the
 * resource detectors): `@opentelemetry/sdk-node` would also load every metrics and logs exporter it can configure, and
 * start OTLP metrics and logs pipelines Muse has no use for (its metrics are Prometheus'), at about 45 MB more memory
 * and half a second more start-up a process.
 *
 * What the SDK reads from the environment still applies: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, the
 * sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), the batch processor (`OTEL_BSP_*`), span limits
 * (`OTEL_SPAN_*`) and the exporter's headers and timeout (`OTEL_EXPORTER_OTLP_*`). Context travels as W3C trace
 * context and baggage.
 */
export async function startTracing(service: string, endpoint: string | undefined): Promise<() => Promise<void>> {
  if (!endpoint) return async () => undefined;
  process.env.OTEL_SERVICE_NAME ??= `muse-${service}`;
  const [{ BatchSpanProcessor, NodeTracerProvider }, { OTLPTraceExporter }, { defaultResource, detectResources, envDetector, hostDetector, processDetector }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new NodeTracerProvider({
    // The detectors NodeSDK uses: service name and attributes from the environment, the process, the host.
    resource: defaultResource().merge(detectResources({ detectors: [envDetector, processDetector, hostDetector] })),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }))],
  });
  provider.register();
  return () => provider.shutdown();
}
