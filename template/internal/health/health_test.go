package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func ok(context.Context) error { return nil }

func failing(context.Context) error { return errors.New("connection refused") }

func blocking(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func ignoresContext(context.Context) error {
	time.Sleep(time.Second)
	return nil
}

func panicking(context.Context) error { panic("boom") }

type response struct {
	code int
	body map[string]any
}

func serve(t *testing.T, handler http.HandlerFunc) response {
	t.Helper()
	rec := httptest.NewRecorder()
	handler(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
	}
	return response{rec.Code, body}
}

// checkStatuses reads the "checks" list: name -> status.
func checkStatuses(t *testing.T, body map[string]any) map[string]string {
	t.Helper()
	checks, ok := body["checks"].([]any)
	if !ok {
		t.Fatalf("checks is not a list: %v", body["checks"])
	}
	out := map[string]string{}
	for _, raw := range checks {
		res, _ := raw.(map[string]any)
		name, _ := res["name"].(string)
		out[name], _ = res["status"].(string)
	}
	return out
}

func TestReady(t *testing.T) {
	tests := []struct {
		name       string
		checks     map[string]CheckFunc
		optional   map[string]CheckFunc
		serving    bool
		draining   bool
		wantCode   int
		wantStatus string
		wantChecks map[string]string
	}{
		{"no checks", nil, nil, true, false, 200, "ready", map[string]string{}},
		{"all pass", map[string]CheckFunc{"database": ok, "cache": ok}, nil, true, false, 200, "ready",
			map[string]string{"database": "ok", "cache": "ok"}},
		{"one fails", map[string]CheckFunc{"database": ok, "cache": failing}, nil, true, false, 503, "unavailable",
			map[string]string{"database": "ok", "cache": "fail"}},
		{"an optional one fails", map[string]CheckFunc{"database": ok}, map[string]CheckFunc{"cache": failing},
			true, false, 200, "ready", map[string]string{"database": "ok", "cache": "fail"}},
		{"timeout", map[string]CheckFunc{"database": blocking}, nil, true, false, 503, "unavailable",
			map[string]string{"database": "fail"}},
		{"check ignoring its context", map[string]CheckFunc{"api": ignoresContext}, nil, true, false, 503, "unavailable",
			map[string]string{"api": "fail"}},
		{"panic", map[string]CheckFunc{"database": panicking}, nil, true, false, 503, "unavailable",
			map[string]string{"database": "fail"}},
		{"starting", map[string]CheckFunc{"database": ok}, nil, false, false, 503, "starting", map[string]string{}},
		{"draining", map[string]CheckFunc{"database": ok}, nil, true, true, 503, "draining", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry(Info{Service: "svc", Version: "1.0.0"})
			for name, fn := range tt.checks {
				reg.Register(name, 50*time.Millisecond, fn)
			}
			for name, fn := range tt.optional {
				reg.RegisterOptional(name, 50*time.Millisecond, fn)
			}
			if tt.serving {
				reg.MarkServing()
			}
			if tt.draining {
				reg.MarkDraining()
			}
			start := time.Now()
			got := serve(t, reg.Ready)
			if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
				t.Errorf("/ready took %s: checks must be bounded by their timeout", elapsed)
			}
			if got.code != tt.wantCode || got.body["status"] != tt.wantStatus {
				t.Errorf("/ready = %d %v, want %d %q", got.code, got.body, tt.wantCode, tt.wantStatus)
			}
			statuses := checkStatuses(t, got.body)
			if len(statuses) != len(tt.wantChecks) {
				t.Errorf("checks = %v, want %v", statuses, tt.wantChecks)
			}
			for name, want := range tt.wantChecks {
				if statuses[name] != want {
					t.Errorf("check %s = %q, want %q", name, statuses[name], want)
				}
			}
			if strings.Contains(mustJSON(t, got.body), `"error"`) {
				t.Errorf("/ready shows a check's error text: %v", got.body)
			}
		})
	}
}

func TestRunReportsRequiredChecks(t *testing.T) {
	reg := NewRegistry(Info{})
	reg.Register("database", time.Second, ok)
	reg.RegisterOptional("cache", time.Second, failing)
	results, requiredOK := reg.Run(context.Background())
	if !requiredOK || AllOK(results) || results[1].Required || results[1].Status != StatusFail {
		t.Errorf("Run = %v, %v", results, requiredOK)
	}
}

func TestLiveIgnoresChecksAndDraining(t *testing.T) {
	reg := NewRegistry(Info{})
	reg.Register("database", time.Second, failing)
	reg.MarkDraining()
	got := serve(t, reg.Live)
	if got.code != 200 || got.body["status"] != "ok" || len(got.body) != 1 {
		t.Errorf("/health = %d %v, want 200 {\"status\":\"ok\"}", got.code, got.body)
	}
}

func TestDetailed(t *testing.T) {
	tests := []struct {
		name       string
		required   CheckFunc
		optional   CheckFunc
		draining   bool
		wantCode   int
		wantStatus string
		wantPhase  string
	}{
		{"healthy", ok, ok, false, 200, "ok", "ready"},
		{"an optional check fails", ok, failing, false, 200, "degraded", "ready"},
		{"a required check fails", failing, ok, false, 503, "unavailable", "ready"},
		{"draining with healthy checks", ok, ok, true, 200, "ok", "draining"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry(Info{Service: "svc", Version: "1.4.2", Environment: "staging"})
			reg.Register("database", time.Second, tt.required)
			reg.RegisterOptional("cache", 0, tt.optional)
			reg.MarkServing()
			if tt.draining {
				reg.MarkDraining()
			}
			got := serve(t, reg.Detailed)
			if got.code != tt.wantCode || got.body["status"] != tt.wantStatus || got.body["phase"] != tt.wantPhase {
				t.Fatalf("/health/detailed = %d %v", got.code, got.body)
			}
			for key, want := range map[string]any{"service": "svc", "version": "1.4.2", "environment": "staging"} {
				if got.body[key] != want {
					t.Errorf("%s = %v, want %v", key, got.body[key], want)
				}
			}
			if len(got.body) != 8 {
				t.Errorf("fields: %v", got.body)
			}
			if uptime, _ := got.body["uptime_seconds"].(float64); uptime < 0 {
				t.Errorf("uptime_seconds = %v", got.body["uptime_seconds"])
			}
			if _, err := time.Parse(time.RFC3339, got.body["timestamp"].(string)); err != nil {
				t.Errorf("timestamp: %v", err)
			}
			for i, raw := range got.body["checks"].([]any) {
				c := raw.(map[string]any)
				wantName, wantRequired := []string{"database", "cache"}[i], i == 0
				if c["name"] != wantName || c["required"] != wantRequired {
					t.Errorf("check %d = %v", i, c)
				}
				if _, isNumber := c["latency_ms"].(float64); !isNumber {
					t.Errorf("check has no latency: %v", c)
				}
				_, hasError := c["error"]
				if failed := c["status"] == "fail"; hasError != failed || (failed && c["error"] != "connection refused") {
					t.Errorf("error text when, and only when, a check failed: %v", c)
				}
			}
		})
	}
}

func TestDefaultTimeout(t *testing.T) {
	reg := NewRegistry(Info{})
	reg.Register("database", 0, blocking)
	start := time.Now()
	results, requiredOK := reg.Run(context.Background())
	if elapsed := time.Since(start); requiredOK || elapsed < DefaultTimeout || elapsed > 3*DefaultTimeout {
		t.Errorf("Run = %v after %s, want a failure after %s", results, elapsed, DefaultTimeout)
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	tests := []struct {
		name string
		reg  func(*Registry)
	}{
		{"empty name", func(r *Registry) { r.Register("", time.Second, ok) }},
		{"negative timeout", func(r *Registry) { r.Register("db", -time.Second, ok) }},
		{"nil function", func(r *Registry) { r.Register("db", time.Second, nil) }},
		{"duplicate", func(r *Registry) { r.Register("db", time.Second, ok); r.RegisterOptional("db", time.Second, ok) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic")
				}
			}()
			tt.reg(NewRegistry(Info{}))
		})
	}
}

func TestChecksRunConcurrently(t *testing.T) {
	// Each check waits until all of them have started: run one after another, they would time out.
	const n = 4
	var started sync.WaitGroup
	started.Add(n)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	waitForOthers := func(ctx context.Context) error {
		started.Done()
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	reg := NewRegistry(Info{})
	for _, name := range []string{"a", "b", "c", "d"} {
		reg.Register(name, 5*time.Second, waitForOthers)
	}
	if results, _ := reg.Run(context.Background()); !AllOK(results) {
		t.Errorf("checks did not run concurrently: %v", results)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResultsKeepRegistrationOrder(t *testing.T) {
	reg := NewRegistry(Info{})
	names := []string{"database", "cache", "api", "queue"}
	for _, name := range names {
		reg.Register(name, time.Second, ok)
	}
	results, _ := reg.Run(context.Background())
	for i, res := range results {
		if res.Name != names[i] {
			t.Errorf("result %d is %q, want %q", i, res.Name, names[i])
		}
	}
}
