package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestSimulateTargets runs `dsexport simulate --json` and holds the adaptive
// schedule to the targets it was made the default for.
func TestSimulateTargets(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"simulate", "--json", "--n", "3000", "--seed", "7"}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("simulate: %v\n%s", err, errOut.String())
	}
	var shape map[string]map[string]any
	if err := json.Unmarshal(out.Bytes(), &shape); err != nil {
		t.Fatalf("simulate --json printed %q: %v", out.String(), err)
	}
	keys := []string{"calls_per_export", "p50_latency_s", "p95_latency_s"}
	for _, s := range []string{"fixed", "adaptive"} {
		var got []string
		for k := range shape[s] {
			got = append(got, k)
		}
		if len(shape) != 2 || len(got) != 3 {
			t.Fatalf("simulate --json = %s; want exactly fixed and adaptive with %v", out.String(), keys)
		}
	}
	if !strings.HasPrefix(out.String(), `{"fixed":`) {
		t.Errorf("simulate --json = %s; want fixed first", out.String())
	}
	var res struct {
		Fixed, Adaptive struct {
			P50   float64 `json:"p50_latency_s"`
			P95   float64 `json:"p95_latency_s"`
			Calls float64 `json:"calls_per_export"`
		}
	}
	json.Unmarshal(out.Bytes(), &res)
	a, f := res.Adaptive, res.Fixed
	if a.P50 > 5 || a.P95 > 20 || a.Calls > f.Calls {
		t.Errorf("adaptive p50 %.1fs, p95 %.1fs, %.1f calls (fixed %.1f); want ≤ 5s, ≤ 20s, no more calls than fixed", a.P50, a.P95, a.Calls, f.Calls)
	}
	// The fixed 60s schedule reports on average half a minute late.
	if f.P50 < 20 || f.P50 > 40 {
		t.Errorf("fixed p50 %.1fs; want about 30s", f.P50)
	}
	// The same seed gives the same figures.
	var again bytes.Buffer
	run(context.Background(), []string{"simulate", "--json", "--n", "3000", "--seed", "7"}, env(nil), &again, &errOut)
	if !reflect.DeepEqual(out.String(), again.String()) {
		t.Errorf("simulate is not reproducible: %s then %s", out.String(), again.String())
	}
}
