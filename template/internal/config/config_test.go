package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(values map[string]string) func(string) string {
	return func(name string) string { return values[name] }
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(env(nil), "1.2.3")
	if err != nil {
		t.Fatalf("Load with no variables: %v", err)
	}
	want := Config{
		Port:            DefaultPort,
		Env:             "production",
		LogLevel:        slog.LevelInfo,
		Version:         "1.2.3",
		ShutdownDelay:   5 * time.Second,
		ShutdownTimeout: 20 * time.Second,
	}
	if cfg != want {
		t.Errorf("defaults = %+v, want %+v", cfg, want)
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(Config) bool
	}{
		{"port", map[string]string{"PORT": "9090"}, func(c Config) bool { return c.Port == 9090 && c.Addr() == ":9090" }},
		{"management port", map[string]string{"MANAGEMENT_PORT": "9091"}, func(c Config) bool { return c.ManagementPort == 9091 }},
		{"port with spaces", map[string]string{"PORT": " 9090 "}, func(c Config) bool { return c.Port == 9090 }},
		{"empty means unset", map[string]string{"PORT": "", "APP_ENV": ""}, func(c Config) bool { return c.Port == DefaultPort && c.Env == "production" }},
		{"development", map[string]string{"APP_ENV": "development"}, func(c Config) bool { return c.Env == "development" }},
		{"env any case", map[string]string{"APP_ENV": "Staging"}, func(c Config) bool { return c.Env == "staging" }},
		{"debug", map[string]string{"LOG_LEVEL": "debug"}, func(c Config) bool { return c.LogLevel == slog.LevelDebug }},
		{"warning", map[string]string{"LOG_LEVEL": "WARNING"}, func(c Config) bool { return c.LogLevel == slog.LevelWarn }},
		{"error", map[string]string{"LOG_LEVEL": "error"}, func(c Config) bool { return c.LogLevel == slog.LevelError }},
		{"version", map[string]string{"APP_VERSION": "v2.0.1-abc123"}, func(c Config) bool { return c.Version == "v2.0.1-abc123" }},
		{"fractional delay", map[string]string{"SHUTDOWN_DELAY_SECONDS": "0.5"}, func(c Config) bool { return c.ShutdownDelay == 500*time.Millisecond }},
		{"no delay", map[string]string{"SHUTDOWN_DELAY_SECONDS": "0"}, func(c Config) bool { return c.ShutdownDelay == 0 }},
		{"timeout", map[string]string{"SHUTDOWN_TIMEOUT_SECONDS": "30"}, func(c Config) bool { return c.ShutdownTimeout == 30*time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(env(tt.env), "dev")
			if err != nil {
				t.Fatalf("Load(%v): %v", tt.env, err)
			}
			if !tt.check(cfg) {
				t.Errorf("Load(%v) = %+v", tt.env, cfg)
			}
		})
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		names []string // every variable the message must name
	}{
		{"port not a number", map[string]string{"PORT": "http"}, []string{"PORT"}},
		{"port zero", map[string]string{"PORT": "0"}, []string{"PORT"}},
		{"port too high", map[string]string{"PORT": "65536"}, []string{"PORT"}},
		{"unknown environment", map[string]string{"APP_ENV": "prod"}, []string{"APP_ENV"}},
		{"unknown log level", map[string]string{"LOG_LEVEL": "verbose"}, []string{"LOG_LEVEL"}},
		{"slog spelling is not accepted", map[string]string{"LOG_LEVEL": "warn"}, []string{"LOG_LEVEL"}},
		{"version with spaces", map[string]string{"APP_VERSION": "1.0 beta"}, []string{"APP_VERSION"}},
		{"negative delay", map[string]string{"SHUTDOWN_DELAY_SECONDS": "-1"}, []string{"SHUTDOWN_DELAY_SECONDS"}},
		{"delay in milliseconds", map[string]string{"SHUTDOWN_DELAY_SECONDS": "5000"}, []string{"SHUTDOWN_DELAY_SECONDS"}},
		{"delay not a number", map[string]string{"SHUTDOWN_DELAY_SECONDS": "NaN"}, []string{"SHUTDOWN_DELAY_SECONDS"}},
		{"privileged management port", map[string]string{"MANAGEMENT_PORT": "443"}, []string{"MANAGEMENT_PORT"}},
		{"management port is the port", map[string]string{"PORT": "9000", "MANAGEMENT_PORT": "9000"}, []string{"MANAGEMENT_PORT"}},
		{"zero timeout drops in-flight requests", map[string]string{"SHUTDOWN_TIMEOUT_SECONDS": "0"}, []string{"SHUTDOWN_TIMEOUT_SECONDS"}},
		{"every problem at once", map[string]string{
			"PORT": "x", "MANAGEMENT_PORT": "y", "APP_ENV": "qa", "LOG_LEVEL": "loud", "SHUTDOWN_DELAY_SECONDS": "soon", "SHUTDOWN_TIMEOUT_SECONDS": "-5",
		}, []string{"PORT", "MANAGEMENT_PORT", "APP_ENV", "LOG_LEVEL", "SHUTDOWN_DELAY_SECONDS", "SHUTDOWN_TIMEOUT_SECONDS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env), "dev")
			var cfgErr *Error
			if !errors.As(err, &cfgErr) {
				t.Fatalf("Load(%v) error = %v, want *Error", tt.env, err)
			}
			if len(cfgErr.Problems) != len(tt.names) {
				t.Errorf("got %d problems, want %d: %v", len(cfgErr.Problems), len(tt.names), err)
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("message spans several lines: %q", msg)
			}
			for _, name := range tt.names {
				if !strings.Contains(msg, name+" ") {
					t.Errorf("message %q does not name %s", msg, name)
				}
				if value := tt.env[name]; !strings.Contains(msg, value) {
					t.Errorf("message %q does not quote the bad value %q", msg, value)
				}
			}
		})
	}
}

func TestProbePort(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want int
	}{
		{map[string]string{"PORT": "7000"}, 7000},
		{nil, DefaultPort},
		{map[string]string{"PORT": "7000", "MANAGEMENT_PORT": "9090"}, 9090},
	}
	for _, tt := range tests {
		if port, err := ProbePort(env(tt.env)); err != nil || port != tt.want {
			t.Errorf("ProbePort(%v) = %d, %v; want %d", tt.env, port, err, tt.want)
		}
	}
	if _, err := ProbePort(env(map[string]string{"PORT": "-1", "LOG_LEVEL": "bad"})); err == nil || strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Errorf("ProbePort checks the ports only, got %v", err)
	}
}

func TestManagementPort(t *testing.T) {
	cfg, err := Load(env(map[string]string{"PORT": "7000", "MANAGEMENT_PORT": "9090"}), "dev")
	if err != nil || cfg.ManagementPort != 9090 || cfg.ManagementAddr() != ":9090" {
		t.Errorf("Load = %+v, %v", cfg, err)
	}
	cfg, err = Load(env(map[string]string{"MANAGEMENT_PORT": " "}), "dev")
	if err != nil || cfg.ManagementPort != 0 || cfg.ManagementAddr() != "" {
		t.Errorf("an empty MANAGEMENT_PORT is unset: %+v, %v", cfg, err)
	}
	for _, bad := range []string{"80", "65536", "http", "7000", "1023"} {
		_, err := Load(env(map[string]string{"PORT": "7000", "MANAGEMENT_PORT": bad}), "dev")
		var cfgErr *Error
		if !errors.As(err, &cfgErr) || len(cfgErr.Problems) != 1 || cfgErr.Problems[0].Var != "MANAGEMENT_PORT" {
			t.Errorf("MANAGEMENT_PORT=%s: %v", bad, err)
		}
	}
}
