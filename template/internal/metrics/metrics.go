// Package metrics keeps the service's request metrics with the official Prometheus client
// (github.com/prometheus/client_golang) and serves them on /metrics.
//
// The two request series are the service contract's (docs/service-contract.md in the template's
// documentation): every service of the fleet, whatever its language, has the same names, labels
// and buckets, so that one dashboard and one alert rule work for all of them. The Go runtime and
// process metrics come on top, under the client's usual names (go_*, process_*).
//
// Managed by the template: `copier update` merges template changes into this file.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Buckets are the upper bounds, in seconds, of the request latency histogram (the contract's,
// which are the Prometheus client's default buckets).
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Labels of both request series.
var labels = []string{"method", "route", "status_code"}

// OtherMethod is the method label of every method outside knownMethods, so that a client sending
// made-up methods cannot create new series without end.
const OtherMethod = "OTHER"

// Method is the method label of a request method.
func Method(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return OtherMethod
}

// Registry holds every metric of the process in a private prometheus.Registry (not the global
// default one, so that a module registering its own metrics on the default registry cannot
// break this one, and tests get a fresh registry each). It is safe for concurrent use.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// series caches, per label set, the two series a request updates: a request then costs one
	// map lookup, not two label hashes, a []string and a strconv.Itoa. Its keys are as bounded as
	// the labels (known methods, route patterns, status codes).
	series sync.Map // seriesKey -> *series
}

type seriesKey struct {
	method, route string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewRegistry returns a registry with the Go runtime and process collectors and the two request
// series of the contract.
func NewRegistry() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route pattern and status code.",
			Buckets: Buckets,
		}, labels),
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.requests,
		r.duration,
	)
	return r
}

// Observe records one finished request. route must be a route pattern or "unmatched" (never a
// raw path), so that the number of series stays bounded; method is bounded here.
func (r *Registry) Observe(method, route string, status int, d time.Duration) {
	key := seriesKey{Method(method), route, status}
	cached, ok := r.series.Load(key)
	if !ok {
		values := []string{key.method, route, strconv.Itoa(status)}
		cached, _ = r.series.LoadOrStore(key, &series{
			requests: r.requests.WithLabelValues(values...),
			duration: r.duration.WithLabelValues(values...),
		})
	}
	s := cached.(*series)
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

// Gatherer is the underlying registry, for tests and for exporting it elsewhere.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves the exposition (the text format, or OpenMetrics/protobuf when the scraper asks).
func (r *Registry) Handler() http.Handler {
	h := promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Scrapers must see current values, never a cached copy.
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, req)
	})
}
