package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type observation struct {
	method, route string
	status        int
}

// fakeRecorder stands in for metrics.Registry.
type fakeRecorder struct {
	mu   sync.Mutex
	seen []observation
}

func (f *fakeRecorder) Observe(method, route string, status int, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, observation{method, route, status})
}

type stack struct {
	handler http.Handler
	logs    *bytes.Buffer
	rec     *fakeRecorder
}

// newStack is the server's chain around a ServeMux with a few test routes.
func newStack() stack {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /silent", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /own-404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, map[string]string{}) })
	mux.HandleFunc("GET /leaky-500", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "dial tcp db.internal:5432: connection refused", http.StatusInternalServerError)
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
			WriteError(w, r, http.StatusRequestEntityTooLarge)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]int64{"bytes": n})
	})
	mux.HandleFunc("GET /panic-after-write", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic("boom")
	})
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{ReplaceAttr: LogShape}))
	rec := &fakeRecorder{}
	handler := Chain(mux, RequestID, Secure, Observe(logger, rec), Recover(logger), JSONErrors, LimitBody)
	return stack{handler, logs, rec}
}

func (s stack) do(method, target string, header http.Header) *httptest.ResponseRecorder {
	return s.doBody(method, target, header, nil)
}

func (s stack) doBody(method, target string, header http.Header, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

func (s stack) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("log line %q is not JSON: %v", raw, err)
		}
		lines = append(lines, line)
	}
	return lines
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		target    string
		wantCode  int
		wantJSON  map[string]any // fields the JSON body must have; nil: no JSON expected
		wantAllow string
		wantRoute string
		wantLevel string
	}{
		{"route with a parameter", "GET", "/items/42?token=secret", 200, map[string]any{"id": "42"}, "", "/items/{id}", "info"},
		{"HEAD of a GET route", "HEAD", "/items/42", 200, nil, "", "/items/{id}", "info"},
		{"status without a body", "POST", "/items", 201, nil, "", "/items", "info"},
		{"handler that writes nothing", "GET", "/silent", 200, nil, "", "/silent", "info"},
		{"index", "GET", "/", 200, map[string]any{}, "", "/", "info"},
		{"unknown path", "GET", "/nope", 404, map[string]any{"error": "not_found"}, "", UnmatchedRoute, "info"},
		{"unknown method", "DELETE", "/items/42", 405, map[string]any{"error": "method_not_allowed"}, "GET, HEAD", UnmatchedRoute, "info"},
		{"made-up method", "BREW", "/items/42", 405, map[string]any{"error": "method_not_allowed"}, "GET, HEAD", UnmatchedRoute, "info"},
		{"handler's own 404 stays", "GET", "/own-404", 404, nil, "", "/own-404", "info"},
		{"panic", "GET", "/panic", 500, map[string]any{"error": "internal_error"}, "", "/panic", "error"},
		{"a handler's 500 loses its text", "GET", "/leaky-500", 500, map[string]any{"error": "internal_error"}, "", "/leaky-500", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack()
			res := s.do(tt.method, tt.target, nil)
			if res.Code != tt.wantCode {
				t.Fatalf("%s %s = %d %q, want %d", tt.method, tt.target, res.Code, res.Body.String(), tt.wantCode)
			}
			id := res.Header().Get(RequestIDHeader)
			if id == "" {
				t.Error("no X-Request-ID on the answer")
			}
			if tt.wantJSON != nil {
				if ct := res.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var body map[string]any
				if err := json.Unmarshal(res.Body.Bytes(), &body); err != nil {
					t.Fatalf("body %q: %v", res.Body.String(), err)
				}
				for k, v := range tt.wantJSON {
					if body[k] != v {
						t.Errorf("body[%s] = %v, want %v", k, body[k], v)
					}
				}
				if tt.wantCode >= 400 {
					if body["request_id"] != id || len(body) != 2 {
						t.Errorf("error body = %v, want error and the header's request_id %q", body, id)
					}
					if cc := res.Header().Get("Cache-Control"); cc != "no-store" {
						t.Errorf("Cache-Control = %q", cc)
					}
				}
			}
			if allow := res.Header().Get("Allow"); allow != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", allow, tt.wantAllow)
			}

			want := observation{tt.method, tt.wantRoute, tt.wantCode}
			if len(s.rec.seen) != 1 || s.rec.seen[0] != want {
				t.Errorf("metrics saw %v, want [%v]", s.rec.seen, want)
			}
			for name, value := range SecurityHeaders {
				if got := res.Header().Get(name); got != value {
					t.Errorf("%s = %q, want %q", name, got, value)
				}
			}

			var access []map[string]any
			for _, line := range s.logLines(t) {
				if line["msg"] == "request" {
					access = append(access, line)
				}
			}
			if len(access) != 1 {
				t.Fatalf("want one access log line, got %v", access)
			}
			line := access[0]
			path, _, _ := strings.Cut(tt.target, "?")
			for k, v := range map[string]any{
				"request_id": id, "method": tt.method, "path": path, "route": tt.wantRoute,
				"status": float64(tt.wantCode), "level": tt.wantLevel,
			} {
				if line[k] != v {
					t.Errorf("log %s = %v, want %v", k, line[k], v)
				}
			}
			if _, ok := line["duration_ms"].(float64); !ok {
				t.Errorf("log line has no duration_ms: %v", line)
			}
			if strings.Contains(s.logs.String(), "secret") {
				t.Error("the query string was logged")
			}
			if strings.Contains(res.Body.String(), "connection refused") {
				t.Error("an error's text reached the client")
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"uuid", "0b6f8d3e-1c2a-4f5b-9e7d-3a1b2c4d5e6f", true},
		{"ulid", "01ARZ3NDEKTSV4RRFFQ69G5FAV", true},
		{"trace id with colons and dots", "00-4bf92f.3577:b34da6_a3ce929d0e0e4736", true},
		{"longest", strings.Repeat("a", 128), true},
		{"base64 punctuation", "YWJj+ZGVm/Z2hp=", false},
		{"none", "", false},
		{"spaces", "a b", false},
		{"log injection", "abc\n{\"level\":\"ERROR\"}", false},
		{"quotes", `abc"def`, false},
		{"too long", strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack()
			header := http.Header{}
			if tt.incoming != "" {
				header.Set(RequestIDHeader, tt.incoming)
			}
			id := s.do("GET", "/items/1", header).Header().Get(RequestIDHeader)
			if tt.keep && id != tt.incoming {
				t.Errorf("id = %q, want the incoming %q", id, tt.incoming)
			}
			if !tt.keep && (id == tt.incoming || !validRequestID(id)) {
				t.Errorf("id = %q: want a new, valid id instead of %q", id, tt.incoming)
			}
		})
	}
	a := newStack().do("GET", "/items/1", nil).Header().Get(RequestIDHeader)
	b := newStack().do("GET", "/items/1", nil).Header().Get(RequestIDHeader)
	if a == b {
		t.Errorf("two requests got the same id %q", a)
	}
}

func TestPanicIsLoggedWithStack(t *testing.T) {
	s := newStack()
	res := s.do("GET", "/panic", nil)
	var panicLine map[string]any
	for _, line := range s.logLines(t) {
		if line["msg"] == "panic" {
			panicLine = line
		}
	}
	if panicLine == nil {
		t.Fatalf("no panic log line in %s", s.logs.String())
	}
	if panicLine["panic"] != "boom" || panicLine["request_id"] != res.Header().Get(RequestIDHeader) {
		t.Errorf("panic line = %v", panicLine)
	}
	if stack, _ := panicLine["stack"].(string); !strings.Contains(stack, "middleware_test.go") {
		t.Errorf("the stack does not show where the panic happened: %q", stack)
	}
}

func TestPanicAfterWritingAbortsTheAnswer(t *testing.T) {
	s := newStack()
	defer func() {
		v := recover()
		err, _ := v.(error)
		if !errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler so net/http drops the connection", v)
		}
		if len(s.rec.seen) != 1 || s.rec.seen[0].status != http.StatusOK {
			t.Errorf("metrics saw %v", s.rec.seen)
		}
	}()
	s.do("GET", "/panic-after-write", nil)
}

func TestRoute(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{"", UnmatchedRoute},
		{"/", "/"},
		{"GET /{$}", "/"},
		{"GET /health", "/health"},
		{"GET  /items/{id}", "/items/{id}"},
		{"POST example.com/items", "/items"},
		{"/static/", "/static/"},
		{"GET /static/{$}", "/static/"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Pattern = tt.pattern
		if got := Route(r); got != tt.want {
			t.Errorf("Route(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestFlushThroughTheWrappers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, _ *http.Request) {
		flusher, ok := w.(http.Flusher)
		if !ok {
			t.Error("the wrapped writer lost http.Flusher")
			return
		}
		_, _ = io.WriteString(w, "data\n")
		flusher.Flush()
	})
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	handler := Chain(mux, RequestID, Secure, Observe(logger, &fakeRecorder{}), Recover(logger), JSONErrors, LimitBody)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/stream", nil))
	if !rec.Flushed || rec.Body.String() != "data\n" {
		t.Errorf("flushed=%v body=%q", rec.Flushed, rec.Body.String())
	}
}

func TestQuietRoutesLogAtDebug(t *testing.T) {
	tests := []struct {
		name      string
		level     slog.Level
		path      string
		wantLevel string // "" when no line is written
	}{
		{"probe hidden at info", slog.LevelInfo, "/probe", ""},
		{"probe shown at debug", slog.LevelDebug, "/probe", "debug"},
		{"failing probe stays at debug", slog.LevelDebug, "/probe-failing", "debug"},
		{"failing probe hidden at warning", slog.LevelWarn, "/probe-failing", ""},
		{"other routes at info", slog.LevelInfo, "/items/1", "info"},
		{"nothing below warning", slog.LevelWarn, "/items/1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /probe", func(http.ResponseWriter, *http.Request) {})
			mux.HandleFunc("GET /probe-failing", func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			mux.HandleFunc("GET /items/{id}", func(http.ResponseWriter, *http.Request) {})
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: tt.level, ReplaceAttr: LogShape}))
			rec := &fakeRecorder{}
			handler := Chain(mux, RequestID, Observe(logger, rec, "/probe", "/probe-failing"))
			handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tt.path, nil))

			if len(rec.seen) != 1 {
				t.Errorf("metrics saw %v: every request is counted, logged or not", rec.seen)
			}
			if tt.wantLevel == "" {
				if logs.Len() != 0 {
					t.Errorf("want no line, got %s", logs.String())
				}
				return
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("%q: %v", logs.String(), err)
			}
			if line["level"] != tt.wantLevel || line["path"] != tt.path {
				t.Errorf("line = %v, want level %s", line, tt.wantLevel)
			}
		})
	}
}

func TestLogShape(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug - 4, ReplaceAttr: LogShape}))
	at := time.Date(2026, 1, 2, 16, 4, 5, 678_900_000, time.FixedZone("CET", 3600))
	for _, level := range []slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelInfo + 2, slog.LevelWarn, slog.LevelError, slog.LevelError + 4} {
		rec := slog.NewRecord(at, level, "shaped", 0)
		rec.AddAttrs(slog.Group("g", slog.String("level", "own"), slog.String("time", "own")))
		if err := logger.Handler().Handle(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	var words []string
	for line := range strings.Lines(logs.String()) {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got["time"] != "2026-01-02T15:04:05.678Z" || got["msg"] != "shaped" {
			t.Errorf("time and msg: %v", got)
		}
		if g, _ := got["g"].(map[string]any); g["level"] != "own" || g["time"] != "own" {
			t.Errorf("a group's own keys changed: %v", got)
		}
		words = append(words, got["level"].(string))
	}
	want := []string{"debug", "debug", "info", "info", "warning", "error", "error"}
	if !slices.Equal(words, want) {
		t.Errorf("level words = %v, want %v", words, want)
	}
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name     string
		body     io.Reader
		length   int64 // Content-Length; -1: chunked (unknown length)
		wantCode int
		wantWord string
	}{
		{"at the limit", bytes.NewReader(make([]byte, MaxBodyBytes)), MaxBodyBytes, 200, ""},
		{"announced over the limit", bytes.NewReader(make([]byte, MaxBodyBytes+1)), MaxBodyBytes + 1, 413, ErrPayloadTooLarge},
		{"chunked over the limit", io.MultiReader(bytes.NewReader(make([]byte, MaxBodyBytes)), strings.NewReader("x")), -1, 413, ErrPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack()
			req := httptest.NewRequest("POST", "/upload", tt.body)
			req.ContentLength = tt.length
			res := httptest.NewRecorder()
			s.handler.ServeHTTP(res, req)
			if res.Code != tt.wantCode {
				t.Fatalf("POST /upload = %d %s, want %d", res.Code, res.Body.String(), tt.wantCode)
			}
			if tt.wantWord == "" {
				return
			}
			var body ErrorBody
			if err := json.Unmarshal(res.Body.Bytes(), &body); err != nil || body.Error != tt.wantWord ||
				body.RequestID != res.Header().Get(RequestIDHeader) {
				t.Errorf("body = %q (%v)", res.Body.String(), err)
			}
			if res.Header().Get("X-Frame-Options") != "DENY" {
				t.Error("the 413 has no security headers")
			}
		})
	}
}

func TestAnnouncedBodyOverTheLimitIsRefusedBeforeRouting(t *testing.T) {
	s := newStack()
	req := httptest.NewRequest("GET", "/nope", strings.NewReader("x"))
	req.ContentLength = MaxBodyBytes + 1
	res := httptest.NewRecorder()
	s.handler.ServeHTTP(res, req)
	if res.Code != http.StatusRequestEntityTooLarge || res.Header().Get("Connection") != "close" {
		t.Errorf("= %d %v", res.Code, res.Header())
	}
}
