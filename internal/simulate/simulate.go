// Package simulate measures poll schedules on a virtual clock: it plays
// simulated exports against a poller.Schedule, the same code the poller runs,
// and reports how long after each export's end its report would come and how
// many Admin API calls it took. README.md documents the model.
package simulate

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// Result is what one schedule did over the simulated exports.
type Result struct {
	P50LatencySeconds float64 `json:"p50_latency_s"`
	P95LatencySeconds float64 `json:"p95_latency_s"`
	CallsPerExport    float64 `json:"calls_per_export"`
	// TimedOut exports were still running when the budget ran out; they
	// have no latency and are not in the percentiles.
	TimedOut int `json:"-"`
}

// Budget bounds every export's polling, as DSEXPORT_MAX_POLLS and the
// wall-clock budget MAX_POLLS × POLL_INTERVAL do.
type Budget struct {
	MaxPolls int
	Wall     time.Duration
}

// export is one simulated export: its length, phases, and how its
// progress and estimates behave.
type export struct {
	length, initializing, finalizing time.Duration
	// stallAt and stall: progress stops for stall once processing reaches
	// the fraction stallAt (no stall when stall is 0).
	stallAt float64
	stall   time.Duration
	// total entities, and the estimate's relative error; revised: the early
	// estimate is too high by this fraction until half-way.
	total       int64
	estErr      float64
	revised     float64
	noEntityEst bool
	noEstimate  bool
	noise       *rand.Rand
}

// Exports draws n exports from the model, reproducibly from seed.
func Exports(n int, seed uint64) []export {
	r := rand.New(rand.NewPCG(seed, seed^0xd5e))
	out := make([]export, n)
	for i := range out {
		// Log-uniform from 1 minute to 6 hours.
		length := time.Duration(math.Exp(math.Log(60)+r.Float64()*(math.Log(6*3600)-math.Log(60))) * float64(time.Second))
		e := export{
			length:       length,
			initializing: time.Duration(float64(length) * (0.02 + 0.03*r.Float64())),
			finalizing:   time.Duration(float64(length) * (0.01 + 0.04*r.Float64())),
			total:        int64(float64(length/time.Second) * (500 + 1000*r.Float64())),
			estErr:       r.NormFloat64() * 0.02,
			noise:        rand.New(rand.NewPCG(r.Uint64(), r.Uint64())),
		}
		if r.Float64() < 0.2 {
			e.stallAt = 0.1 + 0.8*r.Float64()
			e.stall = time.Duration(float64(length) * (0.05 + 0.10*r.Float64()))
		}
		if r.Float64() < 0.1 {
			e.revised = 0.15 * r.Float64()
		}
		switch p := r.Float64(); {
		case p < 0.02:
			e.noEstimate = true
		case p < 0.07:
			e.noEntityEst = true
		}
		out[i] = e
	}
	return out
}

// at is what the Admin API would answer t after the export started.
func (e export) at(t time.Duration) poller.Observation {
	o := poller.Observation{At: time.Unix(0, 0).Add(t)}
	switch {
	case t >= e.length:
		o.State, o.Done = poller.StateSuccessful, true
		o.EntitiesCompleted, o.EntitiesEstimated = e.total, e.estimate(1)
		o.BytesCompleted, o.BytesEstimated = e.total*512, e.estimate(1)*512
		return o
	case t < e.initializing:
		o.State = poller.StateInitializing
		return o
	case t >= e.length-e.finalizing:
		o.State = poller.StateFinalizing
	default:
		o.State = poller.StateProcessing
	}
	x := e.processed(t)
	o.EntitiesCompleted = int64(x * float64(e.total))
	o.EntitiesEstimated = e.estimate(x)
	o.BytesCompleted, o.BytesEstimated = o.EntitiesCompleted*512, o.EntitiesEstimated*512
	if e.noEntityEst || e.noEstimate {
		o.EntitiesEstimated = 0
	}
	if e.noEstimate {
		o.BytesEstimated = 0
	}
	return o
}

// processed is the fraction of entities done at t: linear over processing,
// flat during a stall, all of it by finalizing.
func (e export) processed(t time.Duration) float64 {
	start, end := e.initializing, e.length-e.finalizing
	work := float64(end - start - e.stall)
	if work <= 0 {
		return 1
	}
	done := float64(t - start)
	if e.stall > 0 {
		stallStart := e.stallAt * work
		switch {
		case done > stallStart+float64(e.stall):
			done -= float64(e.stall)
		case done > stallStart:
			done = stallStart
		}
	}
	return math.Min(1, done/work)
}

// estimate is the entity estimate the API reports at progress x: off by the
// export's error, higher before half-way when revised, with a little noise.
func (e export) estimate(x float64) int64 {
	err := e.estErr + e.noise.NormFloat64()*0.002
	if x < 0.5 {
		err += e.revised
	}
	return int64(float64(e.total) * (1 + err))
}

// Run plays every export against s within budget.
func Run(exports []export, s poller.Schedule, budget Budget) Result {
	var latencies []float64
	calls, timedOut := 0, 0
	start := time.Unix(0, 0)
	for _, e := range exports {
		seen := []poller.Observation{e.at(0)} // the start call's answer
		now := time.Duration(0)
		polls := 0
		for {
			if polls >= budget.MaxPolls || now >= budget.Wall {
				timedOut++
				break
			}
			wait := s.Next(start, seen, start.Add(now), budget.MaxPolls-polls)
			// The last poll comes when the wall-clock budget ends, as the
			// poller does it.
			now = min(now+wait, budget.Wall)
			o := e.at(now)
			polls++
			if o.Done {
				latencies = append(latencies, (now - e.length).Seconds())
				break
			}
			seen = append(seen, o)
		}
		calls += polls
	}
	slices.Sort(latencies)
	return Result{
		P50LatencySeconds: round(percentile(latencies, 0.50)),
		P95LatencySeconds: round(percentile(latencies, 0.95)),
		CallsPerExport:    round(float64(calls) / float64(len(exports))),
		TimedOut:          timedOut,
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)]
}

func round(v float64) float64 { return math.Round(v*10) / 10 }
