import {
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Config } from './config.js';

/**
 * OpenTelemetry traces, exported by OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set and
 * nothing otherwise (the API then hands out no-op spans, at no cost). Spans carry routes,
 * statuses, statement kinds and durations: never an email, a token, a query's values or a
 * path with an identifier in it. A service's W3C `traceparent` is continued.
 */
const tracer = trace.getTracer('group-idp');
let enabled = false;
/** What `work` gets when tracing is off: a span that records nothing. */
const idle = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export function startTracing(config: Pick<Config, 'telemetry'>): { shutdown(): Promise<void> } {
  if (!config.telemetry.endpoint) return { shutdown: async () => undefined };
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.telemetry.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${config.telemetry.endpoint.replace(/\/$/, '')}/v1/traces` }))],
  });
  // Also installs the W3C trace-context propagator and the AsyncLocalStorage context manager.
  provider.register();
  enabled = true;
  return { shutdown: () => provider.shutdown() };
}

/** The context a request arrived with: its `traceparent` (and `tracestate`), if any. */
export function incomingContext(headers: Record<string, string | string[] | undefined>): Context {
  return propagation.extract(context.active(), headers);
}

/** Runs `work` in a span that ends with it, recording a thrown error's type (never its message). */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  work: (span: ReturnType<typeof tracer.startSpan>) => Promise<T>,
): Promise<T> {
  // Off (no collector configured): not even a context switch on the hot paths.
  if (!enabled) return work(idle);
  const span = tracer.startSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes },
    options.parent ?? context.active(),
  );
  try {
    return await context.with(trace.setSpan(options.parent ?? context.active(), span), () => work(span));
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
    throw error;
  } finally {
    span.end();
  }
}

/** The trace and span ids of the active span, for log lines. */
export function activeTraceIds(): { trace_id: string; span_id: string } | Record<string, never> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return trace.isSpanContextValid(span.spanContext()) ? { trace_id: traceId, span_id: spanId } : {};
}

export { SpanKind };
