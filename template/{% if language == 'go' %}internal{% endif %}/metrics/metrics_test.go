package metrics

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sampleLine is one sample of the text format: name, optional labels, value.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$`)

// parse checks the exposition line by line and returns its samples keyed by "name{labels}".
func parse(t *testing.T, text string) map[string]float64 {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("the exposition must end with a newline")
	}
	samples := map[string]float64{}
	typed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			if _, dup := typed[name]; dup {
				t.Errorf("TYPE of %s given twice", name)
			}
			typed[name] = kind
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a valid sample line: %q", line)
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")
		if typed[m[1]] == "" && typed[base] != "histogram" {
			t.Errorf("sample %s comes before its TYPE line", m[1])
		}
		value, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("value of %q: %v", line, err)
		}
		samples[m[1]+m[2]] = value
	}
	return samples
}

func exposition(t *testing.T, r *Registry) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type = %q, want %q", ct, ContentType)
	}
	return parse(t, rec.Body.String())
}

func TestEmptyRegistry(t *testing.T) {
	samples := exposition(t, NewRegistry("svc", "1.0.0"))
	if samples["http_requests_in_flight"] != 0 {
		t.Errorf("in flight = %v", samples["http_requests_in_flight"])
	}
	build := `app_build_info{service="svc",version="1.0.0",goversion="` + runtime.Version() + `"}`
	if samples[build] != 1 {
		t.Errorf("missing %s in %v", build, samples)
	}
	if samples["process_start_time_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("process_start_time_seconds = %v", samples["process_start_time_seconds"])
	}
}

func TestObserve(t *testing.T) {
	tests := []struct {
		name     string
		observe  func(*Registry)
		expected map[string]float64
	}{
		{
			name: "counts by method, route and status",
			observe: func(r *Registry) {
				r.Observe("GET", "/health", 200, time.Millisecond)
				r.Observe("GET", "/health", 200, time.Millisecond)
				r.Observe("GET", "/health", 503, time.Millisecond)
				r.Observe("POST", "/items", 201, time.Millisecond)
			},
			expected: map[string]float64{
				`http_requests_total{method="GET",route="/health",status="200"}`:    2,
				`http_requests_total{method="GET",route="/health",status="503"}`:    1,
				`http_requests_total{method="POST",route="/items",status="201"}`:    1,
				`http_request_duration_seconds_count{method="GET",route="/health"}`: 3,
			},
		},
		{
			name: "histogram buckets are cumulative and bounds inclusive",
			observe: func(r *Registry) {
				r.Observe("GET", "/", 200, 3*time.Millisecond)  // <= 0.005
				r.Observe("GET", "/", 200, 5*time.Millisecond)  // == 0.005
				r.Observe("GET", "/", 200, 70*time.Millisecond) // <= 0.1
				r.Observe("GET", "/", 200, 30*time.Second)      // beyond every bound
			},
			expected: map[string]float64{
				`http_request_duration_seconds_bucket{method="GET",route="/",le="0.005"}`: 2,
				`http_request_duration_seconds_bucket{method="GET",route="/",le="0.05"}`:  2,
				`http_request_duration_seconds_bucket{method="GET",route="/",le="0.1"}`:   3,
				`http_request_duration_seconds_bucket{method="GET",route="/",le="10"}`:    3,
				`http_request_duration_seconds_bucket{method="GET",route="/",le="+Inf"}`:  4,
				`http_request_duration_seconds_count{method="GET",route="/"}`:             4,
				`http_request_duration_seconds_sum{method="GET",route="/"}`:               30.078,
			},
		},
		{
			name: "unknown methods share one series",
			observe: func(r *Registry) {
				r.Observe("BREW", "unmatched", 404, time.Millisecond)
				r.Observe("PROPFIND", "unmatched", 404, time.Millisecond)
			},
			expected: map[string]float64{`http_requests_total{method="OTHER",route="unmatched",status="404"}`: 2},
		},
		{
			name: "label values are escaped",
			observe: func(r *Registry) {
				r.Observe("GET", "/a\"b\\c\nd", 200, time.Millisecond)
			},
			expected: map[string]float64{`http_requests_total{method="GET",route="/a\"b\\c\nd",status="200"}`: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry("svc", "dev")
			tt.observe(r)
			samples := exposition(t, r)
			for key, want := range tt.expected {
				got, found := samples[key]
				if !found || got < want-1e-9 || got > want+1e-9 {
					t.Errorf("%s = %v (present: %v), want %v", key, got, found, want)
				}
			}
		})
	}
}

func TestInFlight(t *testing.T) {
	r := NewRegistry("svc", "dev")
	r.InFlight(1)
	r.InFlight(1)
	r.InFlight(-1)
	if got := exposition(t, r)["http_requests_in_flight"]; got != 1 {
		t.Errorf("in flight = %v, want 1", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	r := NewRegistry("svc", "dev")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				r.InFlight(1)
				r.Observe("GET", "/r"+strconv.Itoa((g+i)%5), 200, time.Duration(i)*time.Microsecond)
				r.InFlight(-1)
				if i%100 == 0 {
					_, _ = r.WriteTo(&strings.Builder{})
				}
			}
		}()
	}
	wg.Wait()
	samples := exposition(t, r)
	var total float64
	for key, v := range samples {
		if strings.HasPrefix(key, "http_requests_total{") {
			total += v
		}
	}
	if total != 8*500 {
		t.Errorf("counted %v requests, want %d", total, 8*500)
	}
	if samples["http_requests_in_flight"] != 0 {
		t.Errorf("in flight = %v after every request ended", samples["http_requests_in_flight"])
	}
}
