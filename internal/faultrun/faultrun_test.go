// Package faultrun drives many exports through the real service code, with
// faults injected everywhere, and counts the reports: every export must end
// in exactly one, the one its script calls for, within a minute of its end.
// Run it with
//
//	go test -count=1 -v -run TestFaultInjection ./internal/faultrun
//
// Each scenario runs on each emulator (subtests emulator/scenario, e.g.
// -run 'TestFaultInjection/firestore/store-outage'). FAULTRUN_EMULATOR picks
// the emulators (datastore, firestore, or both, the default);
// DATASTORE_EMULATOR_HOST and FIRESTORE_DATASTORE_EMULATOR_HOST name
// running ones (internal/emulatortest starts them otherwise).
// FAULTRUN_EXPORTS (default 200, the baseline's count; the other scenarios
// scale with it) and FAULTRUN_SEED change the size and the draw;
// FAULTRUN_LOGS names a directory to keep each scenario's logs in.
package faultrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/faults"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Main(m)) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// The titles the scripts call for.
const (
	succeeded = "Datastore export succeeded"
	failed    = "Datastore export failed"
)

// outcome is the end of export i in the scenarios that vary it: one in ten
// fails, one in ten is cancelled, the rest succeed.
func outcome(i int) (adminfake.Step, string) {
	switch i % 10 {
	case 0:
		return adminfake.Failed(7, "lacks storage.objects.create"), failed
	case 1:
		return adminfake.Cancelled(), failed
	}
	return adminfake.Successful(10, 100), succeeded
}

// endsWithin is export i ending at a time of its own, between lo and hi after
// its start, however often it is read.
func endsWithin(lo, hi time.Duration) func(int, scriptEnv) ([]adminfake.Step, string) {
	return func(i int, env scriptEnv) ([]adminfake.Step, string) {
		end, want := outcome(i)
		d := lo + time.Duration(env.rng.Int64N(int64(hi-lo)))
		return []adminfake.Step{adminfake.Until(d, adminfake.Running("PROCESSING", 5, 10, 50, 100), end)}, want
	}
}

// huge is 20 MB: far past Datastore's 1 MiB entity and Slack's limits.
var huge = strings.Repeat("x", 20<<20)

// hostile is export i of the hostile-answers scenario, with maxPolls GETs.
func hostile(maxPolls int) func(int, scriptEnv) ([]adminfake.Step, string) {
	timeout := fmt.Sprintf("Datastore export not seen to finish after %d polls", maxPolls)
	return func(i int, env scriptEnv) ([]adminfake.Step, string) {
		running := adminfake.Running("PROCESSING", 5, 10, 50, 100)
		// Another operation of the project (the next export's), and one
		// of another project.
		sibling := fmt.Sprintf("projects/%s/operations/ASAfake%06d", env.project, 1+(i+1)%max(2, env.exports))
		stranger := "projects/someone-else/operations/ASAfake000001"
		page := adminfake.HTTPBody(http.StatusBadGateway, "<html><body>"+huge+"</body></html>")
		switch i % 6 {
		case 0: // A 20 MB 502 page, twice, then the end.
			return []adminfake.Step{page, page, running, adminfake.Successful(10, 100)}, succeeded
		case 1: // Nothing but 20 MB 502 pages: every poll fails.
			return []adminfake.Step{page}, timeout
		case 2: // A FAILED operation whose error message is 20 MB.
			return []adminfake.Step{running, adminfake.Failed(13, huge)}, failed
		case 3: // Once another operation's answer, then ours.
			return []adminfake.Step{adminfake.AnswerAs(sibling, adminfake.Successful(99, 999)), running, adminfake.Successful(10, 100)}, succeeded
		case 4: // Only ever another operation's answer: every poll fails.
			return []adminfake.Step{adminfake.AnswerAs(sibling, adminfake.Successful(99, 999))}, timeout
		}
		// Only ever an answer from another project.
		return []adminfake.Step{adminfake.AnswerAs(stranger, adminfake.Successful(99, 999))}, timeout
	}
}

// every runs f at random moments, gaps drawn between lo and hi, for span.
func every(ctx context.Context, rng *rand.Rand, lo, hi, span time.Duration, f func()) {
	end := time.Now().Add(span)
	for {
		gap := lo + time.Duration(rng.Int64N(int64(hi-lo)))
		if time.Now().Add(gap).After(end) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		f()
	}
}

// The scenarios. The baseline (the first) is the original run; the others
// run without any sweep, with the poller's own defaults for its deadlines
// and TTLs (a 5 s step deadline, a lease of twice the interval and a
// minute, a claim of a minute), and with the queue redelivering as
// queue.yaml has Cloud Tasks do: only the service itself moves an export
// on.
var scenarios = []scenario{
	{
		// The Admin API answers 503 or 429 to 20% of calls (exports and
		// polls), Slack 500 or 429 to 20% of posts; 10% of poll deliveries
		// are cut off mid-poll (the client goes away, as when an instance
		// dies) and delivered again after a backoff; 20% are duplicated
		// (Cloud Tasks delivers at least once); 5% of operations get a
		// lease from a poller that crashed without releasing it, which only
		// the sweep's resume gets past; and the sweep runs every 100ms.
		name: "baseline", exports: 200,
		export: func(i int, _ scriptEnv) ([]adminfake.Step, string) {
			switch i % 10 {
			case 0:
				return []adminfake.Step{adminfake.Running("PROCESSING", 1, 2, 1, 2), adminfake.Failed(7, "lacks storage.objects.create")}, failed
			case 1:
				return []adminfake.Step{adminfake.Cancelled()}, failed
			}
			steps := make([]adminfake.Step, 1+i%7)
			for j := range steps {
				steps[j] = adminfake.Running("PROCESSING", int64(j), 10, int64(j), 10)
			}
			return append(steps, adminfake.Successful(10, 100)), succeeded
		},
		interval: 5 * time.Millisecond, maxPolls: 200, requestTimeout: 4 * time.Second,
		leaseTTL: 400 * time.Millisecond, claimTTL: 5 * time.Second, stopGrace: 4 * time.Second,
		budget: 40 * time.Millisecond, sweepRound: 100 * time.Millisecond,
		adminFaults: 0.2, slackFaults: 0.2, cutDeliveries: 0.1, duplicateDeliveries: 0.2, crashedLeases: 0.05,
		redeliver: quickRedelivery, sweep: true, wait: 2 * time.Minute,
	},
	{
		// Ambiguous commits: at random moments (every 3–9 s for the first
		// 40 s) the store's answers are held for 6 s, past the 5 s step
		// deadline, while its requests go through: whatever commit was
		// under way happened, and its caller sees a deadline exceeded.
		// 40 exports start over 20 s and end 1–20 s after their start.
		name: "ambiguous-commits", exports: 40, startEvery: 500 * time.Millisecond,
		export:   endsWithin(time.Second, 20*time.Second),
		interval: 250 * time.Millisecond, maxPolls: 400, budget: 10 * time.Second,
		adminFaults: 0.2, slackFaults: 0.2, duplicateDeliveries: 0.2, redeliver: queueRedelivery,
		storeFaults: func(ctx context.Context, p *faults.Proxy, rng *rand.Rand) {
			every(ctx, rng, 3*time.Second, 9*time.Second, 40*time.Second, func() { p.Hold(6 * time.Second) })
		},
		wait: 100 * time.Second,
	},
	{
		// A store outage: 8 s into the run every connection to the store
		// is closed and new ones are reset for 20 s. 30 exports start over
		// 6 s and end 3–45 s after their start, so that some are polled
		// through the outage and some end inside it.
		name: "store-outage", exports: 30, startEvery: 200 * time.Millisecond, lockWindow: time.Minute,
		export:   endsWithin(3*time.Second, 45*time.Second),
		interval: 500 * time.Millisecond, maxPolls: 400, budget: 10 * time.Second,
		adminFaults: 0.2, slackFaults: 0.2, duplicateDeliveries: 0.2, redeliver: queueRedelivery,
		storeFaults: func(ctx context.Context, p *faults.Proxy, _ *rand.Rand) {
			select {
			case <-ctx.Done():
			case <-time.After(8 * time.Second):
				p.Cut(20 * time.Second)
			}
		},
		wait: 120 * time.Second,
	},
	{
		// Huge and foreign answers: 502 pages of 20 MB, a FAILED operation
		// whose error message is 20 MB, answers naming another operation of
		// the project or one of another project. A foreign answer is a
		// failed poll: an export that only ever gets foreign answers (or
		// 502s) ends in a timeout report after its 20 polls.
		name: "hostile-answers", exports: 12,
		export:   hostile(20),
		interval: 200 * time.Millisecond, maxPolls: 20, budget: 10 * time.Second,
		adminFaults: 0.2, slackFaults: 0.2, duplicateDeliveries: 0.2, redeliver: queueRedelivery,
		wait: 60 * time.Second,
	},
}

// TestFaultInjection runs every scenario on every selected emulator, one
// after another.
func TestFaultInjection(t *testing.T) {
	for _, e := range selectedEmulators(t) {
		t.Run(e.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { run(t, e, sc) })
			}
		})
	}
}
