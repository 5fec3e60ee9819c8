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

// Result is what one schedule did over the simulated exports: over all of
// them (Name "all"), by length band and by kind of export.
type Result struct {
	Figures
	// Bands are the figures by export length, shortest first; a band with
	// no exports is left out.
	Bands []Figures `json:"bands"`
	// Kinds are the figures of the exports that start slowly (the first
	// progress shows a tiny fraction done), those with no estimate at all,
	// and the others, in that order, leaving out a kind with no exports.
	Kinds []Figures `json:"kinds"`
}

// Figures is what one schedule did over some of the exports: latencies are
// from an export's end to the GET that sees it, calls are GETs per export.
type Figures struct {
	// Name names the exports: "all", a band as "2m-10m" (exports at least the
	// first and shorter than the second long), or a kind of export.
	Name              string  `json:"name"`
	Exports           int     `json:"exports"`
	P50LatencySeconds float64 `json:"p50_latency_s"`
	P95LatencySeconds float64 `json:"p95_latency_s"`
	MaxLatencySeconds float64 `json:"max_latency_s"`
	CallsPerExport    float64 `json:"calls_per_export"`
	// TimedOut exports were still running when the budget ran out; they
	// have no latency and are not in the percentiles or the maximum.
	TimedOut int `json:"timed_out"`
}

// bands are the length bands of Result.Bands, by their upper ends.
var bands = []struct {
	name string
	upTo time.Duration
}{
	{"<2m", 2 * time.Minute},
	{"2m-10m", 10 * time.Minute},
	{"10m-1h", time.Hour},
	{"1h-6h", 6 * time.Hour},
	{">=6h", math.MaxInt64},
}

// kinds are the kinds of export of Result.Kinds.
var kinds = []string{"slow start", "no estimate", "others"}

// kind is the index in kinds of e's kind.
func (e export) kind() int {
	switch {
	case e.warmup > 0:
		return 0
	case e.noEstimate:
		return 1
	}
	return 2
}

// band is the index in bands of an export length.
func band(length time.Duration) int {
	for i, b := range bands {
		if length < b.upTo {
			return i
		}
	}
	return len(bands) - 1
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
	// warmup and trickle: for warmup once processing begins, entities are
	// counted at trickle times the normal rate (no warm-up when warmup is
	// 0), so the first reading with progress shows a tiny fraction done.
	warmup  time.Duration
	trickle float64
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
	// The warm-ups have their own stream, so the other exports are the
	// ones the model drew before it had warm-ups.
	warm := rand.New(rand.NewPCG(seed, seed^0x7a11))
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
		if warm.Float64() < 0.01 {
			e = e.warmingUp(warm)
		}
		out[i] = e
	}
	return out
}

// warmingUp is e with a slow start, the tail case of the adaptive schedule:
// processing begins within 4s (before the first GET at the adaptive Min of
// 5s), then counts 0.5 to 10 entities a second for 10-40s (at most a
// quarter of processing), so a GET sees a tiny fraction done, such as 3 of
// 119,972 entities at 5s. A slow start always has an estimate.
func (e export) warmingUp(r *rand.Rand) export {
	e.initializing = time.Duration(r.Float64() * float64(4*time.Second))
	e.stallAt, e.stall = 0, 0
	e.noEstimate = false
	processing := e.length - e.finalizing - e.initializing
	e.warmup = min(time.Duration((10+30*r.Float64())*float64(time.Second)), processing/4)
	perSecond := float64(e.total) / (processing - e.warmup).Seconds()
	e.trickle = min(0.01, (0.5+9.5*r.Float64())/perSecond)
	return e
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

// processed is the fraction of entities done at t: a trickle over the
// warm-up, linear over the rest of processing, flat during a stall, all of
// it by finalizing.
func (e export) processed(t time.Duration) float64 {
	start, end := e.initializing, e.length-e.finalizing
	warm := float64(e.warmup)
	// work is processing counted at the normal rate.
	work := float64(end-start-e.stall) - warm*(1-e.trickle)
	if work <= 0 {
		return 1
	}
	done := float64(t - start)
	if e.warmup > 0 {
		done = min(done, warm)*e.trickle + max(0, done-warm)
	}
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

// outcome is how one export went under a schedule.
type outcome struct {
	length   time.Duration
	kind     int
	latency  float64 // seconds from the end to the GET that saw it
	calls    int
	timedOut bool
}

// Run plays every export against s within budget.
func Run(exports []export, s poller.Schedule, budget Budget) Result {
	outcomes := make([]outcome, len(exports))
	for i, e := range exports {
		outcomes[i] = play(e, s, budget)
	}
	return summarize(outcomes)
}

// play follows e with s, as the poller does, until a GET sees it done or
// the budget is spent.
func play(e export, s poller.Schedule, budget Budget) outcome {
	start := time.Unix(0, 0)
	seen := []poller.Observation{e.at(0)} // the start call's answer
	now := time.Duration(0)
	out := outcome{length: e.length, kind: e.kind()}
	for {
		if out.calls >= budget.MaxPolls || now >= budget.Wall {
			out.timedOut = true
			return out
		}
		wait := s.Next(start, seen, start.Add(now), budget.MaxPolls-out.calls)
		// The last poll comes when the wall-clock budget ends, as the
		// poller does it.
		now = min(now+wait, budget.Wall)
		o := e.at(now)
		out.calls++
		if o.Done {
			out.latency = (now - e.length).Seconds()
			return out
		}
		seen = append(seen, o)
	}
}

// summarize is the figures of outcomes, over all, by band and by kind.
func summarize(outcomes []outcome) Result {
	res := Result{Figures: figures(outcomes)}
	res.Name = "all"
	byBand := make([][]outcome, len(bands))
	byKind := make([][]outcome, len(kinds))
	for _, o := range outcomes {
		byBand[band(o.length)] = append(byBand[band(o.length)], o)
		byKind[o.kind] = append(byKind[o.kind], o)
	}
	res.Bands = groups(byBand, func(i int) string { return bands[i].name })
	res.Kinds = groups(byKind, func(i int) string { return kinds[i] })
	return res
}

// groups is the figures of each non-empty group, named by name.
func groups(in [][]outcome, name func(int) string) []Figures {
	var out []Figures
	for i, g := range in {
		if len(g) == 0 {
			continue
		}
		f := figures(g)
		f.Name = name(i)
		out = append(out, f)
	}
	return out
}

// figures is the latency percentiles and maximum of the outcomes that did
// not time out, and the calls per export of all of them.
func figures(outcomes []outcome) Figures {
	var latencies []float64
	b := Figures{Exports: len(outcomes)}
	calls := 0
	for _, o := range outcomes {
		calls += o.calls
		if o.timedOut {
			b.TimedOut++
			continue
		}
		latencies = append(latencies, o.latency)
	}
	slices.Sort(latencies)
	b.P50LatencySeconds = round(percentile(latencies, 0.50))
	b.P95LatencySeconds = round(percentile(latencies, 0.95))
	if len(latencies) > 0 {
		b.MaxLatencySeconds = round(latencies[len(latencies)-1])
	}
	if len(outcomes) > 0 {
		b.CallsPerExport = round(float64(calls) / float64(len(outcomes)))
	}
	return b
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)]
}

func round(v float64) float64 { return math.Round(v*10) / 10 }
