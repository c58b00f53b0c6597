/**
 * An OTLP/HTTP trace receiver on loopback, in the caller's own process (a test,
 * the benchmark): what a collector would get from the services. The services' exporter
 * (`@opentelemetry/exporter-trace-otlp-http`) posts JSON (`ExportTraceServiceRequest`
 * with hex ids) to `<endpoint>/v1/traces`; a protobuf body is refused with 415
 * so a change of exporter shows up as a failing test, not as silence.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind number: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  /** The `service.name` resource attribute of the process that sent it. */
  service: string;
  attributes: Record<string, string | number | boolean>;
  startNanos: bigint;
  endNanos: bigint;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}
interface OtlpRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: Array<{
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpKeyValue[]; startTimeUnixNano: string; endTimeUnixNano?: string }>;
    }>;
  }>;
}

function valueOf(v: OtlpValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue ?? '';
}

function attrs(list: OtlpKeyValue[] | undefined): Record<string, string | number | boolean> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, valueOf(kv.value)]));
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received, and refused (not JSON). */
  requests = 0;
  refused = 0;
  private server?: Server;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        if (req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
          this.refused++;
          res.writeHead(415).end();
          return;
        }
        this.ingest(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpRequest);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private ingest(body: OtlpRequest): void {
    for (const rs of body.resourceSpans ?? []) {
      const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind,
            service,
            attributes: attrs(s.attributes),
            startNanos: BigInt(s.startTimeUnixNano),
            endNanos: BigInt(s.endTimeUnixNano ?? s.startTimeUnixNano),
          });
        }
      }
    }
  }

  /** The spans of `traceId`, by span id. */
  trace(traceId: string): Map<string, ReceivedSpan> {
    return new Map(this.spans.filter((s) => s.traceId === traceId).map((s) => [s.spanId, s]));
  }

  /** `span` and its ancestors, nearest first, as far as the received spans go. */
  ancestry(span: ReceivedSpan): ReceivedSpan[] {
    const byId = this.trace(span.traceId);
    const out = [span];
    let cur = span;
    while (cur.parentSpanId !== '' && byId.has(cur.parentSpanId)) {
      cur = byId.get(cur.parentSpanId)!;
      out.push(cur);
    }
    return out;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
