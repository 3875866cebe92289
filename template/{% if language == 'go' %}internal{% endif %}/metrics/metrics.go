// Package metrics keeps the service's request metrics and writes them in the Prometheus text
// exposition format (version 0.0.4) on /metrics.
//
// It is hand-written, on the standard library, because the template ships no third-party module.
// The names and labels follow the Prometheus conventions, so moving to the official client
// (github.com/prometheus/client_golang) keeps dashboards and alerts working: see
// docs/languages/go.md in the template's documentation ("Moving to client_golang").
//
// Managed by the template: `copier update` merges template changes into this file.
package metrics

import (
	"bytes"
	"cmp"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Buckets are the upper bounds, in seconds, of the request latency histogram (the Prometheus
// client's default buckets: they suit a web service answering within milliseconds to seconds).
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// knownMethods bounds the method label: any other method is counted as OTHER, so that a client
// sending made-up methods cannot create new series without end.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

type counterKey struct {
	method, route string
	status        int
}

type routeKey struct {
	method, route string
}

type histogram struct {
	counts []atomic.Uint64 // per bucket, not cumulative; the last one is +Inf
	sumNs  atomic.Int64
}

// Registry holds every metric of the process. It is safe for concurrent use; recording a request
// takes a read lock and a few atomic additions.
type Registry struct {
	service, version string
	startTime        time.Time
	inFlight         atomic.Int64

	mu         sync.RWMutex
	requests   map[counterKey]*atomic.Uint64
	histograms map[routeKey]*histogram
}

// NewRegistry returns an empty registry; service and version label the build info metric.
func NewRegistry(service, version string) *Registry {
	return &Registry{
		service:    service,
		version:    version,
		startTime:  time.Now(),
		requests:   map[counterKey]*atomic.Uint64{},
		histograms: map[routeKey]*histogram{},
	}
}

// InFlight adds delta to the number of requests being served.
func (r *Registry) InFlight(delta int) { r.inFlight.Add(int64(delta)) }

// Observe records one finished request. route must be a route pattern (never a raw path), so
// that the number of series stays bounded.
func (r *Registry) Observe(method, route string, status int, d time.Duration) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	ck := counterKey{method, route, status}
	rk := routeKey{method, route}

	r.mu.RLock()
	counter, hist := r.requests[ck], r.histograms[rk]
	r.mu.RUnlock()
	if counter == nil || hist == nil {
		r.mu.Lock()
		if counter = r.requests[ck]; counter == nil {
			counter = new(atomic.Uint64)
			r.requests[ck] = counter
		}
		if hist = r.histograms[rk]; hist == nil {
			hist = &histogram{counts: make([]atomic.Uint64, len(Buckets)+1)}
			r.histograms[rk] = hist
		}
		r.mu.Unlock()
	}

	counter.Add(1)
	seconds := d.Seconds()
	i, _ := slices.BinarySearch(Buckets, seconds) // first bucket whose bound is >= seconds
	hist.counts[i].Add(1)
	hist.sumNs.Add(d.Nanoseconds())
}

// Handler serves the exposition.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		_, _ = r.WriteTo(&buf)
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	})
}

// WriteTo writes every metric in the text exposition format, series sorted for stable output.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	type counterSeries struct {
		key   counterKey
		value *atomic.Uint64
	}
	type histogramSeries struct {
		key  routeKey
		hist *histogram
	}

	// Series are never removed and their pointers never change: copy them out under the lock,
	// then read the atomics without it.
	r.mu.RLock()
	counters := make([]counterSeries, 0, len(r.requests))
	for k, v := range r.requests {
		counters = append(counters, counterSeries{k, v})
	}
	histograms := make([]histogramSeries, 0, len(r.histograms))
	for k, h := range r.histograms {
		histograms = append(histograms, histogramSeries{k, h})
	}
	r.mu.RUnlock()

	slices.SortFunc(counters, func(a, b counterSeries) int {
		return cmp.Or(strings.Compare(a.key.route, b.key.route), strings.Compare(a.key.method, b.key.method),
			cmp.Compare(a.key.status, b.key.status))
	})
	slices.SortFunc(histograms, func(a, b histogramSeries) int {
		return cmp.Or(strings.Compare(a.key.route, b.key.route), strings.Compare(a.key.method, b.key.method))
	})

	var b strings.Builder
	header(&b, "http_requests_total", "counter", "HTTP requests answered, by method, route pattern and status code.")
	for _, c := range counters {
		labels := "method=" + quote(c.key.method) + ",route=" + quote(c.key.route) + ",status=" + quote(strconv.Itoa(c.key.status))
		sample(&b, "http_requests_total", labels, strconv.FormatUint(c.value.Load(), 10))
	}

	header(&b, "http_request_duration_seconds", "histogram", "Time to answer HTTP requests, by method and route pattern.")
	for _, s := range histograms {
		labels := "method=" + quote(s.key.method) + ",route=" + quote(s.key.route)
		// _count is the sum of the buckets as read here, so it always equals the +Inf bucket even
		// while requests are being recorded.
		var cumulative uint64
		for i, bound := range Buckets {
			cumulative += s.hist.counts[i].Load()
			sample(&b, "http_request_duration_seconds_bucket", labels+",le="+quote(formatFloat(bound)), strconv.FormatUint(cumulative, 10))
		}
		cumulative += s.hist.counts[len(Buckets)].Load()
		sample(&b, "http_request_duration_seconds_bucket", labels+`,le="+Inf"`, strconv.FormatUint(cumulative, 10))
		sample(&b, "http_request_duration_seconds_sum", labels, formatFloat(float64(s.hist.sumNs.Load())/1e9))
		sample(&b, "http_request_duration_seconds_count", labels, strconv.FormatUint(cumulative, 10))
	}

	header(&b, "http_requests_in_flight", "gauge", "HTTP requests being answered now.")
	sample(&b, "http_requests_in_flight", "", strconv.FormatInt(r.inFlight.Load(), 10))

	header(&b, "app_build_info", "gauge", "Build information of the service; the value is always 1.")
	sample(&b, "app_build_info", "service="+quote(r.service)+",version="+quote(r.version)+",goversion="+quote(runtime.Version()), "1")

	header(&b, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.")
	sample(&b, "process_start_time_seconds", "", formatFloat(float64(r.startTime.UnixMilli())/1000))

	header(&b, "go_goroutines", "gauge", "Number of goroutines that currently exist.")
	sample(&b, "go_goroutines", "", strconv.Itoa(runtime.NumGoroutine()))

	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func header(b *strings.Builder, name, kind, help string) {
	b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + kind + "\n")
}

// sample writes one line: name{labels} value.
func sample(b *strings.Builder, name, labels, value string) {
	b.WriteString(name)
	if labels != "" {
		b.WriteString("{" + labels + "}")
	}
	b.WriteString(" " + value + "\n")
}

// quote writes a label value: backslash, double quote and newline escaped, as the format requires.
func quote(value string) string {
	return `"` + labelEscaper.Replace(value) + `"`
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
