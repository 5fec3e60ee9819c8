package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dsexport/dsexport/internal/simulate"
	"github.com/dsexport/dsexport/poller"
)

// simulateCmd compares the fixed and adaptive schedules on simulated exports.
func simulateCmd(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	asJSON := fs.Bool("json", false, `print {"fixed": {...}, "adaptive": {...}} only`)
	n := fs.Int("n", 10000, "how many exports to simulate")
	seed := fs.Uint64("seed", 1, "seed of the simulated exports")
	min := fs.Duration("poll-min", 5*time.Second, "adaptive schedule's shortest wait (DSEXPORT_POLL_MIN)")
	max := fs.Duration("poll-max", 15*time.Minute, "adaptive schedule's longest wait (DSEXPORT_POLL_MAX)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *n <= 0 {
		return usagef("--n=%d: want a positive number", *n)
	}
	if *min <= 0 || *max < *min {
		return usagef("--poll-min=%s --poll-max=%s: want 0 < min <= max", *min, *max)
	}
	exports := simulate.Exports(*n, *seed)
	// Both schedules get a budget that covers the longest simulated export
	// (6h): DSEXPORT_MAX_POLLS=400 at 60s. With the default 60 polls a third
	// of the exports would time out under either schedule.
	budget := simulate.Budget{MaxPolls: 400, Wall: 400 * time.Minute}
	start := time.Now()
	fixed := simulate.Run(exports, poller.Fixed{Every: time.Minute}, budget)
	adaptive := simulate.Run(exports, poller.Adaptive{Min: *min, Max: *max}, budget)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Fixed    simulate.Result `json:"fixed"`
			Adaptive simulate.Result `json:"adaptive"`
		}{fixed, adaptive})
	}
	fmt.Fprintf(stdout, "%d simulated exports (seed %d), log-uniform from 1m to 6h; budget 400 polls / 400m\n", *n, *seed)
	fmt.Fprintf(stdout, "%-10s %14s %14s %16s %10s\n", "schedule", "p50 latency", "p95 latency", "calls/export", "timed out")
	for _, r := range []struct {
		name string
		res  simulate.Result
	}{{"fixed 60s", fixed}, {"adaptive", adaptive}} {
		fmt.Fprintf(stdout, "%-10s %13.1fs %13.1fs %16.1f %10d\n", r.name, r.res.P50LatencySeconds, r.res.P95LatencySeconds, r.res.CallsPerExport, r.res.TimedOut)
	}
	fmt.Fprintf(stdout, "(%s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}
