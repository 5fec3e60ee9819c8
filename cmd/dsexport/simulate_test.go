package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
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
	keys := []string{"bands", "calls_per_export", "exports", "kinds", "max_latency_s", "name", "p50_latency_s", "p95_latency_s", "timed_out"}
	for _, s := range []string{"fixed", "adaptive"} {
		var got []string
		for k := range shape[s] {
			got = append(got, k)
		}
		slices.Sort(got)
		if len(shape) != 2 || !slices.Equal(got, keys) {
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
			Max   float64 `json:"max_latency_s"`
			Calls float64 `json:"calls_per_export"`
			Kinds []struct {
				Name string  `json:"name"`
				Max  float64 `json:"max_latency_s"`
			} `json:"kinds"`
		}
	}
	json.Unmarshal(out.Bytes(), &res)
	a, f := res.Adaptive, res.Fixed
	if a.P50 > 5 || a.P95 > 20 || a.Calls > f.Calls {
		t.Errorf("adaptive p50 %.1fs, p95 %.1fs, %.1f calls (fixed %.1f); want ≤ 5s, ≤ 20s, no more calls than fixed", a.P50, a.P95, a.Calls, f.Calls)
	}
	// A slow start (a tiny first reading) is reported within the near-end
	// pace, 20s; exports with no estimate at all are not (see the README).
	for _, k := range a.Kinds {
		if k.Name != "no estimate" && k.Max > 20 {
			t.Errorf("adaptive max latency of %s exports %.1fs; want ≤ 20s", k.Name, k.Max)
		}
	}
	if f.Max > 60 || f.Max < f.P95 {
		t.Errorf("fixed max latency %.1fs (p95 %.1fs); want between p95 and 60s", f.Max, f.P95)
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

// TestSimulateText: the text output has the maximum beside p50 and p95, and
// a row for each schedule in each length band and kind of export.
func TestSimulateText(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"simulate", "--n", "500", "--seed", "3"}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("simulate: %v\n%s", err, errOut.String())
	}
	text := out.String()
	for _, want := range []string{"p50", "p95", "max", "GETs/export", "timed out", "fixed 1m0s", "adaptive", "by length:", "by kind of export:"} {
		if !strings.Contains(text, want) {
			t.Errorf("simulate printed\n%s\nwant %q in it", text, want)
		}
	}
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		for _, band := range []string{"all ", "<2m ", "2m-10m ", "10m-1h ", "1h-6h ", "slow start ", "no estimate ", "others "} {
			if strings.HasPrefix(line, band) {
				rows++
				if !strings.Contains(line, "s ") {
					t.Errorf("row %q has no latency", line)
				}
			}
		}
	}
	// The first schedule's row of all, of each band (4: nothing of 6h or
	// more) and of each kind (3).
	if rows != 1+4+3 {
		t.Errorf("simulate printed %d rows of figures; want 8:\n%s", rows, text)
	}
}
