package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q, want the text format", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestRequestSeries(t *testing.T) {
	r := NewRegistry()
	r.Observe("GET", "/items/{id}", 200, 30*time.Millisecond)
	r.Observe("GET", "/items/{id}", 200, 3*time.Second)
	r.Observe("BREW", "unmatched", 405, time.Millisecond)
	r.Observe("TRACE", "unmatched", 405, time.Millisecond)
	text := scrape(t, r)

	for _, want := range []string{
		"# TYPE http_requests_total counter",
		`http_requests_total{method="GET",route="/items/{id}",status_code="200"} 2`,
		`http_requests_total{method="OTHER",route="unmatched",status_code="405"} 2`,
		"# TYPE http_request_duration_seconds histogram",
		`http_request_duration_seconds_bucket{method="GET",route="/items/{id}",status_code="200",le="0.025"} 0`,
		`http_request_duration_seconds_bucket{method="GET",route="/items/{id}",status_code="200",le="0.05"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="/items/{id}",status_code="200",le="2.5"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="/items/{id}",status_code="200",le="5"} 2`,
		`http_request_duration_seconds_bucket{method="GET",route="/items/{id}",status_code="200",le="+Inf"} 2`,
		`http_request_duration_seconds_count{method="GET",route="/items/{id}",status_code="200"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	// the contract's buckets, no more, no fewer
	les := regexp.MustCompile(`http_request_duration_seconds_bucket\{method="GET",route="/items/\{id\}",status_code="200",le="([^"]+)"\}`).
		FindAllStringSubmatch(text, -1)
	var got []string
	for _, m := range les {
		got = append(got, m[1])
	}
	if strings.Join(got, ",") != "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,+Inf" {
		t.Errorf("buckets = %v", got)
	}
}

func TestRuntimeMetrics(t *testing.T) {
	text := scrape(t, NewRegistry())
	for _, want := range []string{"go_goroutines ", "go_memstats_alloc_bytes ", "process_start_time_seconds "} {
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestMethod(t *testing.T) {
	for method, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE",
		"OPTIONS": "OPTIONS", "CONNECT": "OTHER", "TRACE": "OTHER", "get": "OTHER", "BREW": "OTHER",
	} {
		if got := Method(method); got != want {
			t.Errorf("Method(%q) = %q, want %q", method, got, want)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	r := NewRegistry()
	b.ReportAllocs()
	for b.Loop() {
		r.Observe("GET", "/items/{id}", 200, time.Millisecond)
	}
}
