package cloudlog

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCloudJSON(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, true, "example-proj").With("operation", "projects/p/operations/x")
	var ctx context.Context
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
	req := httptest.NewRequest(http.MethodGet, "/cron/export", nil)
	req.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1")
	h.ServeHTTP(httptest.NewRecorder(), req)

	log.WarnContext(ctx, "poll failed", "poll", 3)
	log.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"severity": "WARNING", "message": "poll failed", "poll": 3.0, "operation": "projects/p/operations/x",
		"logging.googleapis.com/trace":         "projects/example-proj/traces/105445aa7843bc8bf206b12000100000",
		"logging.googleapis.com/spanId":        "0000000000000001",
		"logging.googleapis.com/trace_sampled": true,
	} {
		if got := first[key]; got != want {
			t.Errorf("%s = %v; want %v", key, got, want)
		}
	}
	if _, ok := second["logging.googleapis.com/trace"]; ok {
		t.Errorf("a line logged outside a request has a trace: %s", lines[1])
	}
	if got, want := second["severity"], "INFO"; got != want {
		t.Errorf("severity = %v; want %v", got, want)
	}
}

func TestMalformedTraceIgnored(t *testing.T) {
	for _, h := range []string{"", "nothex", "105445aa7843bc8bf206b12000100000/abc", "105445aa7843bc8bf206b12000100000\n"} {
		if ctx := WithTrace(context.Background(), h); ctx.Value(traceKey{}) != nil {
			t.Errorf("WithTrace(%q) kept a trace", h)
		}
	}
}

func TestLocalText(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, false, "p").Error("report not delivered", "err", "boom")
	if got := buf.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, `msg="report not delivered"`) {
		t.Errorf("text log = %q", got)
	}
}
