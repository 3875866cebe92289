package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736" // pragma: allowlist secret (the W3C Trace Context example id)
	parentID = "00f067aa0ba902b7"
)

var info = Info{ServiceName: "orders", Version: "1.4.2", Environment: "staging"}

func getenv(values map[string]string) func(string) string {
	return func(name string) string { return values[name] }
}

// logBuffer collects JSON log lines written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if raw == "" {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("log line %q is not JSON: %v", raw, err)
		}
		out = append(out, line)
	}
	return out
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// route is middleware.Route's rule, kept here so that this package's tests need no other.
func route(r *http.Request) string {
	pattern := r.Pattern[strings.IndexByte(r.Pattern, '/'):]
	return strings.TrimSuffix(pattern, "{$}")
}

// traced is a ServeMux with a parametric route, a failing one and an operational endpoint,
// behind the tracing middleware; each request logs a line with its context.
func traced(tr *Tracing, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "request")
		w.WriteHeader(http.StatusOK)
	}
	mux.HandleFunc("GET /{$}", ok)
	mux.HandleFunc("GET /items/{id}", ok)
	mux.HandleFunc("GET /health", ok)
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	return tr.Middleware(route, "/health")(mux)
}

func serve(h http.Handler, method, target string, header http.Header) int {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func spans(t *testing.T, tr *Tracing, exp *tracetest.InMemoryExporter) tracetest.SpanStubs {
	t.Helper()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return exp.GetSpans()
}

func attrs(kvs []attribute.KeyValue) map[string]any {
	out := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		out[string(kv.Key)] = kv.Value.AsInterface()
	}
	return out
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector/otlp/"}, "https://collector/otlp/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:4318"}, "http://c:4318/custom"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, "http://c:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, ""},
	} {
		if got := Endpoint(getenv(tc.env)); got != tc.want {
			t.Errorf("Endpoint(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// TestOffByDefault: without an endpoint there is no provider, no span, no traceparent handling
// and no log field; the handler and the logger are the ones given.
func TestOffByDefault(t *testing.T) {
	before := otel.GetTracerProvider()
	var logs bytes.Buffer
	tr := Setup(context.Background(), getenv(nil), info, newLogger(&logs))
	if tr != nil {
		t.Fatal("Setup started tracing without an endpoint")
	}
	if otel.GetTracerProvider() != before {
		t.Error("Setup replaced the global tracer provider")
	}
	if _, isSDK := otel.GetTracerProvider().(*sdktrace.TracerProvider); isSDK {
		t.Error("an SDK tracer provider is installed")
	}
	logger := newLogger(&logs)
	if tr.Logger(logger) != logger {
		t.Error("the logger was wrapped")
	}
	var seen *http.Request
	next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r })
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	tr.Middleware(route)(next).ServeHTTP(httptest.NewRecorder(), req)
	if seen != req {
		t.Error("the middleware replaced the request")
	}
	if sc := trace.SpanContextFromContext(seen.Context()); sc.IsValid() {
		t.Errorf("the traceparent was read: %v", sc)
	}
	if err := tr.Shutdown(context.Background()); err != nil || tr.ForceFlush(context.Background()) != nil {
		t.Error("a nil Tracing failed")
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q", logs.String())
	}
}

func TestSpanPerRequest(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := New(context.Background(), info, newLogger(io.Discard), exp, "memory")
	h := traced(tr, newLogger(io.Discard))
	serve(h, "GET", "/items/42?secret=x", nil)
	serve(h, "GET", "/", nil)
	serve(h, "GET", "/boom", nil)
	serve(h, "GET", "/nowhere", nil)
	serve(h, "HEAD", "/health", nil)
	serve(h, "GET", "/health", nil)

	got := spans(t, tr, exp)
	if len(got) != 4 {
		t.Fatalf("want 4 spans (none for /health), got %d: %v", len(got), got)
	}
	for i, want := range []struct {
		name, route string
		status      int64
		code        codes.Code
	}{
		{"GET /items/{id}", "/items/{id}", 200, codes.Unset},
		{"GET /", "/", 200, codes.Unset},
		{"GET /boom", "/boom", 500, codes.Error},
		{"GET", "", 404, codes.Unset}, // no route matched: the method only, no http.route
	} {
		span := got[i]
		a := attrs(span.Attributes)
		if span.Name != want.name || span.SpanKind != trace.SpanKindServer {
			t.Errorf("span %d: %q %v, want %q server", i, span.Name, span.SpanKind, want.name)
		}
		if a["http.request.method"] != "GET" || a["http.response.status_code"] != want.status {
			t.Errorf("span %q: attributes %v", span.Name, a)
		}
		if r, has := a["http.route"]; (want.route == "" && has) || (want.route != "" && r != want.route) {
			t.Errorf("span %q: http.route %v, want %q", span.Name, r, want.route)
		}
		if span.Status.Code != want.code {
			t.Errorf("span %q: status %v, want %v", span.Name, span.Status.Code, want.code)
		}
	}
}

func TestTraceparentContinued(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := New(context.Background(), info, newLogger(io.Discard), exp, "memory")
	var logs logBuffer
	logger := tr.Logger(newLogger(&logs))
	h := traced(tr, logger)

	serve(h, "GET", "/items/1", http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}})
	got := spans(t, tr, exp)
	if len(got) != 1 {
		t.Fatalf("want 1 span, got %d", len(got))
	}
	span := got[0]
	if span.SpanContext.TraceID().String() != traceID || span.Parent.SpanID().String() != parentID || !span.Parent.IsRemote() {
		t.Errorf("span %s parent %s: the traceparent was not continued", span.SpanContext.TraceID(), span.Parent.SpanID())
	}
	lines := logs.lines(t)
	if len(lines) != 1 || lines[0]["trace_id"] != traceID || lines[0]["span_id"] != span.SpanContext.SpanID().String() {
		t.Errorf("the request's log line does not carry the span's ids: %v", lines)
	}

	// A caller that did not sample: parentbased_always_on records nothing, and logs no ids.
	exp.Reset()
	serve(h, "GET", "/items/2", http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-00"}})
	if got := spans(t, tr, exp); len(got) != 0 {
		t.Errorf("an unsampled trace was exported: %v", got)
	}
	if lines := logs.lines(t); len(lines) != 2 || lines[1]["trace_id"] != nil {
		t.Errorf("an unsampled request logged trace ids: %v", lines)
	}
}

func TestLogIDs(t *testing.T) {
	tr := New(context.Background(), info, newLogger(io.Discard), tracetest.NewInMemoryExporter(), "memory")
	var logs logBuffer
	logger := tr.Logger(newLogger(&logs)).With(slog.String("service", "orders"))
	ctx, span := tr.provider.Tracer("test").Start(context.Background(), "work")
	logger.InfoContext(ctx, "inside")
	logger.Info("no context")
	span.End()
	lines := logs.lines(t)
	sc := span.SpanContext()
	if lines[0]["trace_id"] != sc.TraceID().String() || lines[0]["span_id"] != sc.SpanID().String() || lines[0]["service"] != "orders" {
		t.Errorf("line within the span: %v", lines[0])
	}
	if len(lines[0]["trace_id"].(string)) != 32 || len(lines[0]["span_id"].(string)) != 16 {
		t.Errorf("ids are not 32 and 16 hex digits: %v", lines[0])
	}
	if _, has := lines[1]["trace_id"]; has {
		t.Errorf("line without a span context: %v", lines[1])
	}
}

func TestResource(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=test-pod")
	exp := tracetest.NewInMemoryExporter()
	tr := New(context.Background(), info, newLogger(io.Discard), exp, "memory")
	serve(traced(tr, newLogger(io.Discard)), "GET", "/", nil)
	got := spans(t, tr, exp)
	res := attrs(got[0].Resource.Attributes())
	for key, want := range map[string]string{
		"service.name": "orders", "service.version": "1.4.2", "deployment.environment.name": "staging",
		"k8s.pod.name": "test-pod", "telemetry.sdk.language": "go",
	} {
		if res[key] != want {
			t.Errorf("resource %s = %v, want %q (all: %v)", key, res[key], want, res)
		}
	}

	t.Setenv("OTEL_SERVICE_NAME", "orders-eu")
	exp = tracetest.NewInMemoryExporter()
	tr = New(context.Background(), info, newLogger(io.Discard), exp, "memory")
	serve(traced(tr, newLogger(io.Discard)), "GET", "/", nil)
	if name := attrs(spans(t, tr, exp)[0].Resource.Attributes())["service.name"]; name != "orders-eu" {
		t.Errorf("service.name = %v, want OTEL_SERVICE_NAME's", name)
	}
}

// keptExporter keeps what it received after Shutdown (tracetest's in-memory exporter forgets).
type keptExporter struct {
	mu    sync.Mutex
	names []string
}

func (e *keptExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		e.names = append(e.names, s.Name())
	}
	return nil
}

func (e *keptExporter) Shutdown(context.Context) error { return nil }

func TestShutdownFlushes(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000") // nothing leaves before the shutdown
	exp := &keptExporter{}
	tr := New(context.Background(), info, newLogger(io.Discard), exp, "memory")
	serve(traced(tr, newLogger(io.Discard)), "GET", "/items/7", nil)
	if len(exp.names) != 0 {
		t.Fatal("exported before the shutdown")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(exp.names) != 1 || exp.names[0] != "GET /items/{id}" {
		t.Errorf("exported at shutdown: %v", exp.names)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func warnings(t *testing.T, logs *logBuffer) []map[string]any {
	var out []map[string]any
	for _, line := range logs.lines(t) {
		if line["level"] == "WARN" {
			out = append(out, line)
		}
	}
	return out
}

// TestUnreachableEndpointWarnsOnce: with a closed port, several batches fail; one warning.
func TestUnreachableEndpointWarnsOnce(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
	endpoint := "http://" + closedPort(t)
	var logs logBuffer
	tr := Setup(context.Background(), getenv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}), info, newLogger(&logs))
	defer tr.Shutdown(context.Background())
	h := traced(tr, newLogger(io.Discard))
	for range 5 {
		serve(h, "GET", "/items/1", nil)
		_ = tr.ForceFlush(context.Background()) // one failed export each
	}
	got := warnings(t, &logs)
	if len(got) != 1 {
		t.Fatalf("want one warning, got %v", logs.lines(t))
	}
	msg, _ := got[0]["msg"].(string)
	if got[0]["endpoint"] != endpoint+"/v1/traces" || !strings.Contains(msg, "spans are being dropped") {
		t.Errorf("the warning does not name the endpoint and the drop: %v", got[0])
	}
}

// TestMalformedEndpoint: the service runs, traces are still continued and logged, one warning.
func TestMalformedEndpoint(t *testing.T) {
	var logs logBuffer
	env := getenv(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318"})
	tr := Setup(context.Background(), env, info, newLogger(&logs))
	defer tr.Shutdown(context.Background())
	var requestLogs logBuffer
	h := traced(tr, tr.Logger(newLogger(&requestLogs)))
	for range 3 {
		if code := serve(h, "GET", "/items/1", http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}}); code != 200 {
			t.Fatalf("answered %d", code)
		}
	}
	_ = tr.ForceFlush(context.Background())
	if got := warnings(t, &logs); len(got) != 1 || got[0]["endpoint"] != "collector:4318" {
		t.Errorf("want one warning naming the endpoint, got %v", logs.lines(t))
	}
	if line := requestLogs.lines(t)[0]; line["trace_id"] != traceID {
		t.Errorf("the trace was not continued: %v", line)
	}
}
