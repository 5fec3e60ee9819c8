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
	// Both schedules get a budget that covers the longest simulated export
	// (6h) by default: 400 polls at 60s. With the service's default of 60 a
	// third of the exports time out under either schedule.
	maxPolls := fs.Int("max-polls", 400, "polls per export at most (DSEXPORT_MAX_POLLS); with --interval the wall-clock budget")
	interval := fs.Duration("interval", time.Minute, "the fixed schedule's interval (DSEXPORT_POLL_INTERVAL)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *n <= 0 {
		return usagef("--n=%d: want a positive number", *n)
	}
	if *maxPolls <= 0 || *interval <= 0 {
		return usagef("--max-polls=%d --interval=%s: want positive values", *maxPolls, *interval)
	}
	if *min <= 0 || *max < *min {
		return usagef("--poll-min=%s --poll-max=%s: want 0 < min <= max", *min, *max)
	}
	exports := simulate.Exports(*n, *seed)
	budget := simulate.Budget{MaxPolls: *maxPolls, Wall: time.Duration(*maxPolls) * *interval}
	start := time.Now()
	fixed := simulate.Run(exports, poller.Fixed{Every: *interval}, budget)
	adaptive := simulate.Run(exports, poller.Adaptive{Min: *min, Max: *max}, budget)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Fixed    simulate.Result `json:"fixed"`
			Adaptive simulate.Result `json:"adaptive"`
		}{fixed, adaptive})
	}
	fmt.Fprintf(stdout, "%d simulated exports (seed %d), log-uniform from 1m to 6h; budget %d polls / %s\n", *n, *seed, *maxPolls, budget.Wall)
	fmt.Fprintf(stdout, "%-10s %14s %14s %16s %10s\n", "schedule", "p50 latency", "p95 latency", "calls/export", "timed out")
	fmt.Fprintln(stdout, "(latencies are of the exports that did not time out)")
	for _, r := range []struct {
		name string
		res  simulate.Result
	}{{"fixed " + interval.String(), fixed}, {"adaptive", adaptive}} {
		fmt.Fprintf(stdout, "%-10s %13.1fs %13.1fs %16.1f %10d\n", r.name, r.res.P50LatencySeconds, r.res.P95LatencySeconds, r.res.CallsPerExport, r.res.TimedOut)
	}
	fmt.Fprintf(stdout, "(%s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}
