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
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false) // the band "<2m" as it is
		return enc.Encode(struct {
			Fixed    simulate.Result `json:"fixed"`
			Adaptive simulate.Result `json:"adaptive"`
		}{fixed, adaptive})
	}
	fmt.Fprintf(stdout, "%d simulated exports (seed %d), log-uniform from 1m to 6h, 1%% with a slow start; budget %d polls / %s\n", *n, *seed, *maxPolls, budget.Wall)
	printSimulation(stdout, []namedResult{{"fixed " + interval.String(), fixed}, {"adaptive", adaptive}})
	fmt.Fprintf(stdout, "(%s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// namedResult is one schedule's figures under its name.
type namedResult struct {
	name string
	res  simulate.Result
}

// printSimulation prints the schedules' figures over all exports, then by
// export length and by kind of export. Every schedule ran over the same
// exports, so their bands and kinds are the same.
func printSimulation(w io.Writer, results []namedResult) {
	const row = "%-11s %7s  %-11s %8s %8s %8s %13s %10s\n"
	fmt.Fprintf(w, row, "exports", "count", "schedule", "p50", "p95", "max", "GETs/export", "timed out")
	rows := func(of func(simulate.Result) []simulate.Figures) {
		for i, g := range of(results[0].res) {
			name, count := g.Name, fmt.Sprint(g.Exports)
			for _, r := range results {
				f := of(r.res)[i]
				p50, p95, max := "-", "-", "-" // every export timed out: no latency
				if f.TimedOut < f.Exports {
					p50, p95, max = seconds(f.P50LatencySeconds), seconds(f.P95LatencySeconds), seconds(f.MaxLatencySeconds)
				}
				fmt.Fprintf(w, row, name, count, r.name, p50, p95, max, fmt.Sprintf("%.1f", f.CallsPerExport), fmt.Sprint(f.TimedOut))
				name, count = "", ""
			}
		}
	}
	rows(func(r simulate.Result) []simulate.Figures { return []simulate.Figures{r.Figures} })
	fmt.Fprintln(w, "by length:")
	rows(func(r simulate.Result) []simulate.Figures { return r.Bands })
	fmt.Fprintln(w, "by kind of export:")
	rows(func(r simulate.Result) []simulate.Figures { return r.Kinds })
	fmt.Fprintln(w, "(latency: from an export's end to the GET that sees it, over the exports that did not time out)")
}

func seconds(s float64) string { return fmt.Sprintf("%.1fs", s) }
