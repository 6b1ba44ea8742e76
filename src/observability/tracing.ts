/**
 * OpenTelemetry traces (`tracing.enabled`): one span per authorization request, token
 * request, registration and `/verify` decision, exported over OTLP/HTTP with a batching
 * processor. The SDK and exporter are imported only when tracing is enabled, so a gateway
 * without tracing loads none of them.
 *
 * `/verify` spans are made from the decision observer after the answer (start time back-
 * dated to the request's arrival): the decision path itself carries no tracing code. They
 * are root spans: forwardAuth subrequests carry no `traceparent` the gateway could trust
 * to link them to the proxy's trace.
 */
import type { RequestHandler } from 'express';
import type { Tracer } from '@opentelemetry/api';
import type { GatewayConfig } from '../config/schema.js';
import type { DecisionObserver, DecisionOutcome } from '../forward-auth/decision-observer.js';
import type { Logger } from '../logging/logger.js';

export interface Tracing {
  /** Express middleware: a span per request to the OAuth endpoints it is mounted on. */
  routeSpans: (name: string) => RequestHandler;
  /** Decision observer: a span per `/verify` decision. */
  decisions: DecisionObserver;
  shutdown(): Promise<void>;
}

export async function startTracing(
  config: GatewayConfig['tracing'],
  logger: Logger,
): Promise<Tracing | undefined> {
  if (!config.enabled) return undefined;
  const [api, node, base, exporterModule, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new node.NodeTracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler: new base.ParentBasedSampler({
      root: new base.TraceIdRatioBasedSampler(config.sampleRatio),
    }),
    spanProcessors: [
      new base.BatchSpanProcessor(new exporterModule.OTLPTraceExporter({ url: config.endpoint }), {
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  const tracer: Tracer = provider.getTracer('mcp-gateway');
  logger.info('tracing enabled', { endpoint: config.endpoint, sampleRatio: config.sampleRatio });

  return {
    routeSpans:
      (name) =>
      (req, res, next): void => {
        const span = tracer.startSpan(name, {
          kind: api.SpanKind.SERVER,
          attributes: { 'http.request.method': req.method, 'url.path': req.path },
        });
        res.once('finish', () => {
          span.setAttribute('http.response.status_code', res.statusCode);
          if (res.statusCode >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
          span.end();
        });
        next();
      },
    decisions: {
      decided(outcome: DecisionOutcome): void {
        const end = Date.now();
        const span = tracer.startSpan('verify', {
          kind: api.SpanKind.SERVER,
          startTime: end - outcome.seconds * 1000,
          attributes: {
            'http.response.status_code': outcome.status,
            'mcp_gateway.decision': outcome.status < 300 ? 'allow' : 'deny',
            'mcp_gateway.reason': outcome.reason,
            ...(outcome.resource ? { 'mcp_gateway.resource': outcome.resource } : {}),
            ...(outcome.clientId ? { 'mcp_gateway.client_id': outcome.clientId } : {}),
            ...(outcome.tool ? { 'mcp_gateway.tool': outcome.tool } : {}),
          },
        });
        span.end(end);
      },
    },
    shutdown: () => provider.shutdown(),
  };
}
