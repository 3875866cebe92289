// Package middleware wraps every request: a request id, the security headers, the request body
// limit, one JSON access log line and the request metrics, recovery from panics into a JSON 500,
// and the contract's JSON error bodies for unknown routes (404), methods (405), bodies over the
// limit (413) and internal errors (500).
//
// Managed by the template: `copier update` merges template changes into this file.
package middleware

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

// requestIDCanonical is RequestIDHeader as net/http keys it in a Header map.
var requestIDCanonical = http.CanonicalHeaderKey(RequestIDHeader)

// UnmatchedRoute is the route label of requests that matched no route pattern.
const UnmatchedRoute = "unmatched"

// MaxBodyBytes bounds request bodies (1 MiB, the service contract's limit).
const MaxBodyBytes = 1 << 20

// Error words of the contract's error body.
const (
	ErrNotFound         = "not_found"
	ErrMethodNotAllowed = "method_not_allowed"
	ErrPayloadTooLarge  = "payload_too_large"
	ErrInternal         = "internal_error"
)

// SecurityHeaders are sent on every answer, errors and operational endpoints included. The
// service answers JSON only: no document may load anything, be framed or be read cross-origin.
// HSTS is the TLS terminator's job (the Gateway or load balancer knows the scheme).
var SecurityHeaders = map[string]string{
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// Secure sets SecurityHeaders on every answer. Handlers may still override one.
//
// SecurityHeaders is read once, when the chain is built: per request, the headers cost one
// allocation for all their values (not one per header, as Header.Set makes) and no map
// iteration. Each answer still gets its own values, so a handler that edits one in place
// changes only its own answer.
func Secure(next http.Handler) http.Handler {
	names := make([]string, 0, len(SecurityHeaders))
	for name := range SecurityHeaders {
		names = append(names, http.CanonicalHeaderKey(name))
	}
	slices.Sort(names)
	values := make([]string, len(names))
	for i, name := range names {
		values[i] = SecurityHeaders[name]
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		own := slices.Clone(values)
		for i, name := range names {
			h[name] = own[i : i+1 : i+1] // a full slice: an Add appends to a copy, not to the next value
		}
		next.ServeHTTP(w, r)
	})
}

// LimitBody answers 413 at once when Content-Length announces more than MaxBodyBytes, before
// any routing, and bounds every other body (chunked) to MaxBodyBytes: reading past it fails with
// *http.MaxBytesError, and a handler then answers WriteError(w, r, http.StatusRequestEntityTooLarge).
func LimitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			// The body is not read: close the connection rather than drain it.
			w.Header().Set("Connection", "close")
			WriteError(w, r, http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// Recorder receives the request metrics (metrics.Registry implements it).
type Recorder interface {
	Observe(method, route string, status int, d time.Duration)
}

// Chain wraps h in the middlewares, the first one outermost.
func Chain(h http.Handler, middlewares ...func(http.Handler) http.Handler) http.Handler {
	for i := len(middlewares) - 1; i >= 0; i-- {
		h = middlewares[i](h)
	}
	return h
}

type requestIDKey struct{}

// RequestIDFrom returns the request id of the request that ctx belongs to, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestID keeps a well-formed incoming X-Request-ID (so one id follows a request through
// several services) or makes a new one, puts it in the request context and answers it back.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The header maps are indexed with the canonical name: Header.Get and Set would
		// canonicalise "X-Request-ID" (not canonical) on every call, with an allocation each.
		var id string
		if v := r.Header[requestIDCanonical]; len(v) > 0 {
			id = v[0]
		}
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header()[requestIDCanonical] = []string{id}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// validRequestID accepts ids of 1 to 128 characters from A-Z a-z 0-9 . _ : - (UUIDs, ULIDs,
// trace ids), so an id from outside can be logged and echoed without escaping or log injection.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// Route is the route label of a request: the path of the ServeMux pattern that matched it
// ("/items/{id}", never the raw path, so that metrics stay bounded), or UnmatchedRoute. It is
// known once the ServeMux has routed the request. The method, a host and the {$} end marker are
// left out: "GET /{$}" is "/", "GET example.com/items/{id}" is "/items/{id}".
func Route(r *http.Request) string {
	pattern := r.Pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 { // "GET /items/{id}" -> "/items/{id}"
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 { // a host before the path
		pattern = pattern[i:]
	}
	pattern = strings.TrimSuffix(pattern, "{$}")
	if pattern == "" {
		return UnmatchedRoute
	}
	return pattern
}

// Observe writes one access log line per request and records its metrics. The line's fields are
// the contract's: request_id, method, path, route, status, duration_ms (and bytes, Go's own). It must see the same
// *http.Request as the ServeMux (no r.WithContext in between), to read the matched pattern.
// Lines are at debug level for the quiet routes (probes and scrapes, which arrive every few
// seconds and would drown the rest, whatever they answer); else error for 5xx answers, info for
// the rest. They hold no query string, header or body.
func Observe(logger *slog.Logger, rec Recorder, quietRoutes ...string) func(http.Handler) http.Handler {
	quiet := make(map[string]bool, len(quietRoutes))
	for _, route := range quietRoutes {
		quiet[route] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rw := &responseWriter{ResponseWriter: w}
			defer func() {
				elapsed := time.Since(start)
				status := rw.status
				if status == 0 {
					status = http.StatusOK // the handler wrote nothing: net/http answers 200
				}
				route := Route(r)
				rec.Observe(r.Method, route, status, elapsed)

				level := slog.LevelInfo
				switch {
				case quiet[route]:
					level = slog.LevelDebug
				case status >= 500:
					level = slog.LevelError
				}
				ctx := r.Context()
				if !logger.Enabled(ctx, level) {
					return // skip building the line
				}
				logger.LogAttrs(ctx, level, "request",
					slog.String("request_id", RequestIDFrom(ctx)),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("route", route),
					slog.Int("status", status),
					slog.Int64("bytes", rw.bytes),
					slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// LogTimeLayout is the time of every log line: RFC 3339 in UTC to the millisecond, as
// "2026-01-02T15:04:05.000Z" (the same text in every language of the fleet).
const LogTimeLayout = "2006-01-02T15:04:05.000Z"

// LevelWord is the level of a log line as the contract writes it: a LOG_LEVEL word (debug, info,
// warning, error), not slog's own DEBUG, INFO, WARN, ERROR. A level between two of slog's takes
// the word of the one below it.
func LevelWord(level slog.Level) string {
	switch {
	case level < slog.LevelInfo:
		return "debug"
	case level < slog.LevelWarn:
		return "info"
	case level < slog.LevelError:
		return "warning"
	default:
		return "error"
	}
}

// LogShape is the slog.HandlerOptions.ReplaceAttr of the service's JSON logger: it writes the
// built-in keys in the fleet's one shape (docs/service-contract.md, "Request ids and logs"):
// "time" in UTC to the millisecond (LogTimeLayout), "level" a LevelWord; "msg" is slog's own.
// Every other attribute passes unchanged.
func LogShape(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		if a.Value.Kind() == slog.KindTime {
			return slog.String(slog.TimeKey, a.Value.Time().UTC().Format(LogTimeLayout))
		}
	case slog.LevelKey:
		if level, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(slog.LevelKey, LevelWord(level))
		}
	}
	return a
}

// Recover turns a panic in a handler into a logged error and a JSON 500. If the answer had
// already begun, the connection is aborted instead, so the client sees a failure rather than
// a truncated success.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw, ok := w.(*responseWriter)
			if !ok {
				rw = &responseWriter{ResponseWriter: w}
			}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, isErr := v.(error); isErr && errors.Is(err, http.ErrAbortHandler) {
					panic(v) // a deliberate abort: net/http handles it quietly
				}
				id := RequestIDFrom(r.Context())
				logger.LogAttrs(r.Context(), slog.LevelError, "panic",
					slog.String("request_id", id),
					slog.Any("panic", v),
					slog.String("stack", string(debug.Stack())),
				)
				if rw.status != 0 {
					panic(http.ErrAbortHandler)
				}
				WriteError(rw, r, http.StatusInternalServerError)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// JSONErrors gives error answers the contract's body, {"error": word, "request_id": id}, in
// place of net/http's plain text: 404 and 405 (with its Allow header) when no route matched,
// and every 413 and 500, whoever wrote them (http.Error with an error's text included: a 500
// never carries it). A handler's own 404 (an unknown item) is left alone.
func JSONErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&errorWriter{ResponseWriter: w, r: r}, r)
	})
}

// ErrorBody is the body of every error the service itself answers.
type ErrorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// errorWords are the words of the statuses whose body the contract fixes.
var errorWords = map[int]string{
	http.StatusNotFound:              ErrNotFound,
	http.StatusMethodNotAllowed:      ErrMethodNotAllowed,
	http.StatusRequestEntityTooLarge: ErrPayloadTooLarge,
	http.StatusInternalServerError:   ErrInternal,
}

// WriteError answers status (404, 405, 413 or 500) with the contract's error body.
func WriteError(w http.ResponseWriter, r *http.Request, status int) {
	word, ok := errorWords[status]
	if !ok {
		word = ErrInternal
		status = http.StatusInternalServerError
	}
	// Never cached: the same path may answer differently a moment later.
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, status, ErrorBody{Error: word, RequestID: RequestIDFrom(r.Context())})
}

type errorWriter struct {
	http.ResponseWriter
	r       *http.Request
	wrote   bool
	replace bool // the body is ours; drop the handler's
}

func (e *errorWriter) ours(code int) bool {
	switch code {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return e.r.Pattern == ""
	case http.StatusRequestEntityTooLarge, http.StatusInternalServerError:
		return true
	}
	return false
}

func (e *errorWriter) WriteHeader(code int) {
	if e.wrote {
		e.ResponseWriter.WriteHeader(code) // let net/http report the superfluous call
		return
	}
	e.wrote = true
	if e.ours(code) {
		e.replace = true
		WriteError(e.ResponseWriter, e.r, code)
		return
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorWriter) Write(b []byte) (int, error) {
	if e.replace {
		return len(b), nil
	}
	e.wrote = true
	return e.ResponseWriter.Write(b)
}

// Flush keeps streaming handlers (w.(http.Flusher)) working through the wrapper.
func (e *errorWriter) Flush() {
	e.wrote = true
	_ = http.NewResponseController(e.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (Flush, deadlines).
func (e *errorWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// responseWriter remembers the status and size of the answer.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx informational answers come before the real one
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush keeps streaming handlers (w.(http.Flusher)) working through the wrapper.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (Flush, deadlines).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteJSON writes body as a JSON answer with the given status.
func WriteJSON(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
