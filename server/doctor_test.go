package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
)

func TestAPIDoctor(t *testing.T) {
	healthy := true
	var deadline time.Time
	doc := poller.Doctor{Checks: []poller.CheckFunc{
		{Name: "bucket", Target: "prod", Run: func(ctx context.Context) ([]poller.Check, error) {
			deadline, _ = ctx.Deadline()
			if healthy {
				return []poller.Check{{OK: true, Detail: "gs://b exists"}}, nil
			}
			return []poller.Check{{Detail: "gs://b does not exist", Fix: "gcloud storage buckets create gs://b --location=US"}}, nil
		}},
		{Name: "slack token", Run: func(ctx context.Context) ([]poller.Check, error) {
			return []poller.Check{{OK: true, Detail: "auth.test: ok"}}, nil
		}},
		// Checks bounded by an hour each: only the handler's deadline makes
		// the one the assertion below looks for.
	}, Timeout: time.Hour}
	srv := httptest.NewServer(server.New(server.Config{Logger: slog.New(slog.DiscardHandler), Doctor: doc}))
	t.Cleanup(srv.Close)
	type answer struct {
		OK     bool           `json:"ok"`
		Failed int            `json:"failed"`
		Checks []poller.Check `json:"checks"`
	}
	get := func() (int, answer) {
		resp, err := http.Get(srv.URL + "/api/doctor")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, a
	}
	code, a := get()
	if code != http.StatusOK || !a.OK || a.Failed != 0 || len(a.Checks) != 2 || a.Checks[0].Target != "prod" {
		t.Errorf("healthy: %d %+v", code, a)
	}
	if deadline.IsZero() || time.Until(deadline) > server.DoctorDeadline {
		t.Errorf("the checks ran with deadline %v, want one within DoctorDeadline", deadline)
	}
	healthy = false
	code, a = get()
	if code != http.StatusServiceUnavailable || a.OK || a.Failed != 1 || a.Checks[0].Fix != "gcloud storage buckets create gs://b --location=US" {
		t.Errorf("failing: %d %+v", code, a)
	}
}

func TestAPIDoctorUnconfigured(t *testing.T) {
	srv := httptest.NewServer(server.New(server.Config{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/doctor")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /api/doctor without a doctor = %d, want 503", resp.StatusCode)
	}
}
