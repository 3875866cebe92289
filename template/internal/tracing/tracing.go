// Package tracing exports OpenTelemetry traces over OTLP/HTTP (protobuf) with the official Go SDK
// (go.opentelemetry.io/otel) and its net/http instrumentation (otelhttp), configured by the
// standard OTEL_* environment variables only.
//
// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// (and OTEL_SDK_DISABLED is not true, OTEL_TRACES_EXPORTER not none). Off, Setup returns nil: no
// provider, no middleware, no log wrapper, so a request costs exactly what it did without
// tracing. On:
//
//   - one SERVER span per application request, named "{method} {route}" with the route label of
//     the request metrics (middleware.Route: "/items/{id}", never the raw path), with the stable
//     HTTP semantic conventions' attributes and status ERROR for a 5xx; the operational endpoints
//     get no span;
//   - an incoming W3C traceparent is continued (and baggage kept), and the global provider and
//     propagator are set, so the service's own code can start child spans (otel.Tracer) and pass
//     the context on (otelhttp.NewTransport);
//   - every log line written with the context of a sampled span (logger.InfoContext(ctx, ...),
//     as the request log line is) carries trace_id and span_id;
//   - spans leave in batches from a goroutine of the SDK, through a bounded queue, never on the
//     request path; an endpoint that fails (unreachable, refusing, malformed) is reported in one
//     warning line per process; the SDK's own diagnostics go to the debug log, not stderr;
//   - Shutdown flushes what is still queued, within the context's deadline.
//
// The SDK reads the rest of the standard variables itself: OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default
// parentbased_always_on), OTEL_BSP_* (batch size, delay, queue), OTEL_EXPORTER_OTLP_HEADERS,
// _TIMEOUT, _COMPRESSION, _CERTIFICATE...
//
// Managed by the template: `copier update` merges template changes into this file.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/go-logr/logr/funcr"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracesPath is appended to OTEL_EXPORTER_OTLP_ENDPOINT (the per-signal variable is used as is).
const tracesPath = "/v1/traces"

// Endpoint is the URL the spans are sent to, or "" when tracing is off: OTEL_SDK_DISABLED=true
// or OTEL_TRACES_EXPORTER=none turn it off; else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, or
// OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended (the OTLP exporter specification). The URL
// may be malformed: New reports it.
func Endpoint(getenv func(string) string) string {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") ||
		strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return ""
	}
	if endpoint := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); endpoint != "" {
		return endpoint
	}
	base := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		return base // reported as malformed by New
	}
	u.Path = path.Join(u.Path, tracesPath)
	return u.String()
}

// Info is what the resource says about the service besides the OTEL_* variables.
type Info struct {
	ServiceName string // service.name unless OTEL_SERVICE_NAME is set
	Version     string // service.version
	Environment string // deployment.environment.name
}

// Tracing is the tracer provider of the process and what goes with it. A nil *Tracing is
// tracing off: its methods do nothing.
type Tracing struct {
	provider   *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
	logger     *slog.Logger
	endpoint   string // redacted, for the log

	warnOnce     sync.Once
	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup starts tracing when an endpoint is configured (see Endpoint), exporting over OTLP/HTTP
// with protobuf, and returns nil otherwise. It never fails: a bad endpoint or resource attribute
// is logged (once) on logger and the service runs on.
func Setup(ctx context.Context, getenv func(string) string, info Info, logger *slog.Logger) *Tracing {
	endpoint := Endpoint(getenv)
	if endpoint == "" {
		return nil
	}
	// The SDK's own diagnostics (a malformed variable...) would go to stderr as plain text: they
	// go to the debug log instead. Failed exports are reported once, below and in New.
	otel.SetLogger(funcr.New(func(_, args string) {
		logger.Debug("traces: OpenTelemetry SDK", slog.String("detail", args))
	}, funcr.Options{Verbosity: 1})) // errors and warnings; not the SDK's info and debug messages

	var exporter sdktrace.SpanExporter
	if err := validURL(endpoint); err != nil {
		logger.Warn("traces: the OTLP endpoint is not a valid URL; spans are being dropped",
			slog.String("endpoint", redact(endpoint)), slog.String("error", err.Error()))
	} else {
		// The URL is given here so that it is the one validated above; the exporter reads the
		// other OTEL_EXPORTER_OTLP_* variables itself. Nothing connects until the first batch.
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
		if err != nil {
			logger.Warn("traces: the OTLP exporter did not start; spans are being dropped",
				slog.String("endpoint", redact(endpoint)), slog.String("error", err.Error()))
		} else {
			exporter = exp
		}
	}
	t := New(ctx, info, logger, exporter, endpoint)
	// The process's provider and propagator, for the service's own spans and outgoing calls.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(t.handleError))
	otel.SetTracerProvider(t.provider)
	otel.SetTextMapPropagator(t.propagator)
	return t
}

// New starts tracing with exporter (tests pass an in-memory one; nil drops every span while
// still continuing traces and correlating logs). endpoint names the destination in the warning.
// The batch span processor reads OTEL_BSP_*, the sampler OTEL_TRACES_SAMPLER. Unlike Setup, it
// leaves the process's global provider, propagator and error handler alone.
func New(ctx context.Context, info Info, logger *slog.Logger, exporter sdktrace.SpanExporter, endpoint string) *Tracing {
	t := &Tracing{
		logger:   logger,
		endpoint: redact(endpoint),
		propagator: propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{}, propagation.Baggage{}),
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		// The service's own values first: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them.
		resource.WithAttributes(
			semconv.ServiceName(info.ServiceName),
			semconv.ServiceVersion(info.Version),
			semconv.DeploymentEnvironmentNameKey.String(info.Environment),
		),
		resource.WithFromEnv(),
	)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: the attributes that parsed are kept.
		logger.Warn("traces: resource attributes", slog.String("error", err.Error()))
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exporter != nil {
		opts = append(opts, sdktrace.WithBatcher(&reportingExporter{SpanExporter: exporter, t: t}))
	}
	t.provider = sdktrace.NewTracerProvider(opts...)
	return t
}

// exportError is a failed export, already reported by exportFailed.
type exportError struct{ err error }

func (e *exportError) Error() string { return "exporting spans: " + e.err.Error() }
func (e *exportError) Unwrap() error { return e.err }

// reportingExporter reports the first failed export of the process in one warning line.
type reportingExporter struct {
	sdktrace.SpanExporter
	t *Tracing
}

func (e *reportingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	e.t.exportFailed(err)
	return &exportError{err}
}

func (t *Tracing) exportFailed(err error) {
	t.warnOnce.Do(func() {
		t.logger.Warn("traces: exporting to the OTLP endpoint failed; spans are being dropped "+
			"(reported once per process)",
			slog.String("endpoint", t.endpoint), slog.String("error", err.Error()))
	})
}

// handleError receives the errors the SDK reports (otel.Handle): export failures were reported
// once by the exporter; anything else goes to the debug log.
func (t *Tracing) handleError(err error) {
	var exported *exportError
	if errors.As(err, &exported) {
		return
	}
	t.logger.Debug("traces: OpenTelemetry SDK", slog.String("error", err.Error()))
}

// Middleware wraps the application port's handler: one SERVER span per request (otelhttp),
// except for the paths in untraced (the operational endpoints), which get none and whose
// traceparent is not even read. route gives the route label of a request the ServeMux has
// routed (middleware.Route).
//
// It must wrap the ServeMux with no middleware in between that replaces the request
// (r.WithContext): the span is named after the pattern the ServeMux sets on that request.
func (t *Tracing) Middleware(route func(*http.Request) string, untraced ...string) func(http.Handler) http.Handler {
	if t == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	skip := make(map[string]bool, len(untraced))
	for _, p := range untraced {
		skip[p] = true
	}
	return func(next http.Handler) http.Handler {
		// Between otelhttp and next: after routing, the request otelhttp passed on carries the
		// matched pattern; http.route is set here, the name by the formatter otelhttp calls then.
		routed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if r.Pattern != "" {
				trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute(route(r)))
			}
		})
		return otelhttp.NewHandler(routed, "",
			otelhttp.WithTracerProvider(t.provider),
			otelhttp.WithPropagators(t.propagator),
			otelhttp.WithFilter(func(r *http.Request) bool { return !skip[r.URL.Path] }),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				return SpanName(r, route)
			}),
		)
	}
}

// SpanName is "{method} {route}" once the ServeMux has routed r, and "{method}" before or when
// no route matched (the HTTP semantic conventions); a method outside the standard ones is "HTTP".
func SpanName(r *http.Request, route func(*http.Request) string) string {
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = "HTTP"
	}
	if r.Pattern == "" {
		return method
	}
	return method + " " + route(r)
}

// Logger returns logger with trace_id and span_id on every line logged with the context of a
// sampled span; without tracing, logger itself.
func (t *Tracing) Logger(logger *slog.Logger) *slog.Logger {
	if t == nil {
		return logger
	}
	return slog.New(logHandler{logger.Handler()})
}

// logHandler adds the ids of the context's span to each record.
type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, rec slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		rec.AddAttrs(slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}

// ForceFlush exports the spans that have ended and are still queued.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// Shutdown flushes the spans still queued and stops the exporter, within ctx's deadline. Later
// calls return the first one's result. A failed export was already logged once and is not
// returned again.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.shutdownOnce.Do(func() {
		err := t.provider.Shutdown(ctx)
		var exported *exportError
		if err != nil && !errors.As(err, &exported) {
			t.shutdownErr = fmt.Errorf("flushing traces: %w", err)
		}
	})
	return t.shutdownErr
}

// validURL accepts an http or https URL with a host: the OTLP/HTTP endpoints.
func validURL(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("the scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// redact hides a password in the URL's user information, if any.
func redact(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Redacted()
	}
	return endpoint
}
