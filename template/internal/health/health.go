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
	"sync"
	"sync/atomic"
	"time"
)

// CheckFunc reports whether one dependency can be used. It must return when ctx is done.
type CheckFunc func(ctx context.Context) error

// DefaultTimeout bounds a check registered with a timeout of 0.
const DefaultTimeout = time.Second

// Check statuses.
const (
	StatusOK   = "ok"
	StatusFail = "fail"
)

// Lifecycle phases: starting (listening, not yet ready), ready, draining (from SIGTERM on).
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseDraining = "draining"
)

// Result is the outcome of one check. Error is set when, and only when, it failed; /ready
// leaves it out.
type Result struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"` // ok or fail
	Required  bool    `json:"required"`
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
	name     string
	timeout  time.Duration
	required bool
	fn       CheckFunc
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

// Register adds a required readiness check: while it fails, /ready answers 503 and the instance
// gets no traffic. Each run gets its own timeout (DefaultTimeout when timeout is 0); a check
// that does not return in time counts as failed. Register panics on an empty or duplicate name,
// like http.ServeMux.Handle does on a duplicate pattern: both are programming errors found at
// start.
func (r *Registry) Register(name string, timeout time.Duration, fn CheckFunc) {
	r.add(check{name: name, timeout: timeout, required: true, fn: fn})
}

// RegisterOptional adds an optional check: a dependency the service can answer without (a cache,
// a recommendation API). Its failure leaves /ready at 200 and turns /health/detailed to
// "degraded", so that people see it without the instance losing its traffic.
func (r *Registry) RegisterOptional(name string, timeout time.Duration, fn CheckFunc) {
	r.add(check{name: name, timeout: timeout, required: false, fn: fn})
}

func (r *Registry) add(c check) {
	if c.name == "" || c.fn == nil || c.timeout < 0 {
		panic("health: a check needs a name, a function and a timeout of 0 (the default) or more")
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, existing := range r.checks {
		if existing.name == c.name {
			panic("health: check " + c.name + " registered twice")
		}
	}
	r.checks = append(r.checks, c)
}

// MarkServing ends the starting state.
func (r *Registry) MarkServing() { r.serving.Store(true) }

// MarkDraining makes /ready answer 503 from now on (on SIGTERM).
func (r *Registry) MarkDraining() { r.draining.Store(true) }

// Draining reports whether shutdown has begun.
func (r *Registry) Draining() bool { return r.draining.Load() }

// Phase is the lifecycle phase: starting, ready or draining.
func (r *Registry) Phase() string {
	switch {
	case r.draining.Load():
		return PhaseDraining
	case r.serving.Load():
		return PhaseReady
	default:
		return PhaseStarting
	}
}

// Run runs every check concurrently, each within its timeout, and reports whether every
// required check passed (an optional one may have failed: see AllOK). Results come in the order
// the checks were registered.
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

	requiredOK := true
	for _, res := range results {
		requiredOK = requiredOK && (res.Status == StatusOK || !res.Required)
	}
	return results, requiredOK
}

// AllOK reports whether every check of results passed, optional ones included.
func AllOK(results []Result) bool {
	for _, res := range results {
		if res.Status != StatusOK {
			return false
		}
	}
	return true
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
	result := Result{Name: c.name, Status: StatusOK, Required: c.required, LatencyMS: milliseconds(time.Since(start))}
	if err != nil {
		result.Status = StatusFail
		result.Error = err.Error()
		if result.Error == "" {
			result.Error = "check failed"
		}
	}
	return result
}

// Live answers the liveness probe: the process can serve. It checks no dependency, so that an
// outage of a database never restarts every instance at once.
func (r *Registry) Live(w http.ResponseWriter, _ *http.Request) {
	// The answer never changes: written from bytes encoded once, not encoded per probe.
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(liveBody)
}

// liveBody is the body of /health, as writeJSON would encode it.
var liveBody = []byte(`{"status":"ok"}` + "\n")

type readyBody struct {
	Status string   `json:"status"` // ready, starting, draining or unavailable
	Checks []Result `json:"checks"`
}

// Ready answers the readiness probe: 200 "ready" when serving and every required check passes
// (an optional one may fail); 503 "starting" before the server listens, "draining" after
// SIGTERM (checks are not run in either), "unavailable" when a required check fails. Error
// texts stay out of this answer (more callers may reach it); /health/detailed has them.
func (r *Registry) Ready(w http.ResponseWriter, req *http.Request) {
	if phase := r.Phase(); phase != PhaseReady {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: phase, Checks: []Result{}})
		return
	}
	results, requiredOK := r.Run(req.Context())
	for i := range results {
		results[i].Error = ""
	}
	if !requiredOK {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: "unavailable", Checks: results})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Status: "ready", Checks: results})
}

type detailedBody struct {
	Status        string   `json:"status"` // ok, degraded or unavailable
	Phase         string   `json:"phase"`  // starting, ready or draining
	Service       string   `json:"service"`
	Version       string   `json:"version"`
	Environment   string   `json:"environment"`
	UptimeSeconds float64  `json:"uptime_seconds"`
	Timestamp     string   `json:"timestamp"`
	Checks        []Result `json:"checks"`
}

// Detailed answers diagnostics: phase, version, uptime and each check with its latency and its
// error text. It always runs the checks, and its status depends on them only: 200 "ok", 200
// "degraded" when an optional check fails, 503 "unavailable" when a required one fails. With
// MANAGEMENT_PORT set it is not reachable on the application port.
func (r *Registry) Detailed(w http.ResponseWriter, req *http.Request) {
	results, requiredOK := r.Run(req.Context())
	body := detailedBody{
		Status:        "ok",
		Phase:         r.Phase(),
		Service:       r.info.Service,
		Version:       r.info.Version,
		Environment:   r.info.Environment,
		UptimeSeconds: math.Round(time.Since(r.started).Seconds()*1000) / 1000,
		Timestamp:     time.Now().UTC().Format(time.RFC3339Nano),
		Checks:        results,
	}
	status := http.StatusOK
	switch {
	case !requiredOK:
		body.Status = "unavailable"
		status = http.StatusServiceUnavailable
	case !AllOK(results):
		body.Status = "degraded"
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
