// Package health serves liveness (/health), readiness (/ready) and diagnostics
// (/health/detailed), and holds the registry of readiness checks that the service's own code
// (internal/app/checks.go) extends with its dependencies: a database, a cache, a required API.
//
// Managed by the template: `copier update` merges template changes into this file.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// CheckFunc reports whether one dependency can be used. It must return when ctx is done.
type CheckFunc func(ctx context.Context) error

// Result is the outcome of one check.
type Result struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"` // "ok" or "error"
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// Info describes the running service in /health/detailed.
type Info struct {
	Service     string
	Version     string
	Environment string
}

type check struct {
	name    string
	timeout time.Duration
	fn      CheckFunc
}

// Registry holds the readiness checks and the lifecycle state: starting, serving, draining.
type Registry struct {
	info    Info
	started time.Time

	mu     sync.RWMutex
	checks []check

	serving  atomic.Bool
	draining atomic.Bool
}

// NewRegistry returns a registry in the starting state: /ready answers 503 until MarkServing.
func NewRegistry(info Info) *Registry {
	return &Registry{info: info, started: time.Now()}
}

// Register adds a readiness check. Each run gets its own timeout; a check that does not return
// in time counts as failed. Register panics on an empty or duplicate name, like
// http.ServeMux.Handle does on a duplicate pattern: both are programming errors found at start.
func (r *Registry) Register(name string, timeout time.Duration, fn CheckFunc) {
	if name == "" || fn == nil || timeout <= 0 {
		panic("health: Register needs a name, a positive timeout and a function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.checks {
		if c.name == name {
			panic("health: check " + name + " registered twice")
		}
	}
	r.checks = append(r.checks, check{name: name, timeout: timeout, fn: fn})
}

// MarkServing ends the starting state.
func (r *Registry) MarkServing() { r.serving.Store(true) }

// MarkDraining makes /ready answer 503 from now on (on SIGTERM).
func (r *Registry) MarkDraining() { r.draining.Store(true) }

// Draining reports whether shutdown has begun.
func (r *Registry) Draining() bool { return r.draining.Load() }

// Run runs every check concurrently, each within its timeout, and reports whether all passed.
// Results come in the order the checks were registered.
func (r *Registry) Run(ctx context.Context) ([]Result, bool) {
	r.mu.RLock()
	checks := r.checks
	r.mu.RUnlock()

	results := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runCheck(ctx, c)
		}()
	}
	wg.Wait()

	healthy := true
	for _, res := range results {
		healthy = healthy && res.Status == "ok"
	}
	return results, healthy
}

func runCheck(parent context.Context, c check) Result {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("check panicked: %v", v)
			}
		}()
		done <- c.fn(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// A check that ignores its context is abandoned here, not waited for.
		err = fmt.Errorf("no answer within %s", c.timeout)
	}
	result := Result{Name: c.name, Status: "ok", LatencyMS: milliseconds(time.Since(start))}
	if err != nil {
		result.Status = "error"
		result.Error = err.Error()
	}
	return result
}

// Live answers the liveness probe: the process can serve. It checks no dependency, so that an
// outage of a database never restarts every instance at once.
func (r *Registry) Live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readyBody struct {
	Status string   `json:"status"` // ready, starting, draining or unavailable
	Checks []Result `json:"checks"`
}

// Ready answers the readiness probe: 200 when serving and every check passes; 503 while
// starting, while draining after SIGTERM, or when a check fails. Error texts stay out of this
// answer (it may be reachable from outside); /health/detailed has them.
func (r *Registry) Ready(w http.ResponseWriter, req *http.Request) {
	switch {
	case r.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: "draining", Checks: []Result{}})
		return
	case !r.serving.Load():
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: "starting", Checks: []Result{}})
		return
	}
	results, healthy := r.Run(req.Context())
	for i := range results {
		results[i].Error = ""
	}
	if !healthy {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: "unavailable", Checks: results})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Status: "ready", Checks: results})
}

type detailedBody struct {
	Status        string   `json:"status"` // ok or degraded
	Service       string   `json:"service"`
	Version       string   `json:"version"`
	Environment   string   `json:"environment"`
	GoVersion     string   `json:"go_version"`
	Timestamp     string   `json:"timestamp"`
	UptimeSeconds float64  `json:"uptime_seconds"`
	Serving       bool     `json:"serving"`
	Draining      bool     `json:"draining"`
	Checks        []Result `json:"checks"`
}

// Detailed answers internal diagnostics: version, uptime and each check with its latency and
// error; 503 "degraded" when a check fails. Keep it off the public ingress.
func (r *Registry) Detailed(w http.ResponseWriter, req *http.Request) {
	results, healthy := r.Run(req.Context())
	body := detailedBody{
		Status:        "ok",
		Service:       r.info.Service,
		Version:       r.info.Version,
		Environment:   r.info.Environment,
		GoVersion:     runtime.Version(),
		Timestamp:     time.Now().UTC().Format(time.RFC3339),
		UptimeSeconds: math.Round(time.Since(r.started).Seconds()*1000) / 1000,
		Serving:       r.serving.Load(),
		Draining:      r.draining.Load(),
		Checks:        results,
	}
	status := http.StatusOK
	if !healthy {
		body.Status = "degraded"
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

func milliseconds(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())) / 1000
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Probes and dashboards must see the current state, never a cached one.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
