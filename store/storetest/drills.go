package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// testDrills runs the restore drills' subtests, each on a store of its own.
func testDrills(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"Lifecycle", testDrillLifecycle},
		{"NotBefore", testDrillNotBefore},
		{"Leases", testDrillLeases},
		{"NotFound", testDrillNotFound},
		{"Bounded", testDrillBounded},
		{"ConcurrentBegin", testConcurrentBeginDrill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

// newDrill is a drill of target begun at began, at its first step, with
// nanoseconds the store has to cut and a zone it has to turn to UTC.
func newDrill(target string, began time.Time) poller.Drill {
	return poller.Drill{
		ID: target + "/" + began.UTC().Format("20060102T150405Z"), Target: target, Project: "example-proj", Database: "(default)",
		Trigger: poller.TriggerCron, Began: began.In(time.FixedZone("CET", 3600)), Step: poller.DrillChoose,
		ExportTime: began.Add(-5*time.Hour + 3), Timeout: poller.DefaultDrillTimeout,
	}
}

// storedDrill is d as the store gives it back.
func storedDrill(d poller.Drill) poller.Drill {
	for _, t := range []*time.Time{&d.Began, &d.ExportTime, &d.CreateStart, &d.ImportStart, &d.ImportEnd,
		&d.Ended, &d.ReportedAt, &d.Updated, &d.LeaseExpires} {
		if !t.IsZero() {
			*t = us(*t)
		}
	}
	return d
}

func beginDrill(t *testing.T, s Store, d poller.Drill, notBefore time.Time, ok bool, what string) poller.Drill {
	t.Helper()
	got, began, err := s.BeginDrill(context.Background(), d, notBefore)
	if err != nil || began != ok {
		t.Fatalf("%s: BeginDrill(%q, %v) = %q, %v, %v; want %v", what, d.ID, notBefore, got.ID, began, err, ok)
	}
	return got
}

func getDrill(t *testing.T, s Store, id string) poller.Drill {
	t.Helper()
	d, err := s.Drill(context.Background(), id)
	if err != nil {
		t.Fatalf("Drill(%q): %v", id, err)
	}
	return d
}

func latestDrill(t *testing.T, s Store, target string) (poller.Drill, bool) {
	t.Helper()
	d, ok, err := s.LatestDrill(context.Background(), target)
	if err != nil {
		t.Fatalf("LatestDrill(%q): %v", target, err)
	}
	return d, ok
}

func unfinished(t *testing.T, s Store) []string {
	t.Helper()
	ds, err := s.UnfinishedDrills(context.Background())
	if err != nil {
		t.Fatalf("UnfinishedDrills: %v", err)
	}
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func acquireDrill(t *testing.T, s Store, id, holder string, at time.Time, ok bool, what string) poller.Drill {
	t.Helper()
	d, got, err := s.AcquireDrill(context.Background(), id, holder, at, time.Minute)
	if err != nil || got != ok {
		t.Fatalf("%s: AcquireDrill(%q, %q, %v) = holder %q, %v, %v; want %v", what, id, holder, at, d.LeaseHolder, got, err, ok)
	}
	return d
}

func saveDrill(t *testing.T, s Store, d poller.Drill, holder string, at time.Time, want error, what string) {
	t.Helper()
	if err := s.SaveDrill(context.Background(), d, holder, at); !errors.Is(err, want) || (want == nil && err != nil) {
		t.Fatalf("%s: SaveDrill(%q, %q) = %v; want %v", what, d.ID, holder, err, want)
	}
}

// testDrillLifecycle: a drill begins, blocks the next of its target while
// under way, advances under its lease and, finished, lets the next begin.
func testDrillLifecycle(t *testing.T, s Store) {
	if _, ok := latestDrill(t, s, "analytics"); ok {
		t.Fatal("LatestDrill of a target that never drilled found one")
	}
	if ids := unfinished(t, s); len(ids) != 0 {
		t.Fatalf("UnfinishedDrills of an empty store = %v; want none", ids)
	}
	d1 := newDrill("analytics", base)
	got := beginDrill(t, s, d1, time.Time{}, true, "first drill")
	if want := storedDrill(d1); !reflect.DeepEqual(got, want) {
		t.Fatalf("BeginDrill returned %+v; want %+v", got, want)
	}
	if got := getDrill(t, s, d1.ID); !reflect.DeepEqual(got, storedDrill(d1)) {
		t.Fatalf("Drill(%q) = %+v; want %+v", d1.ID, got, storedDrill(d1))
	}
	// Another drill of the target is refused while d1 is under way,
	// whatever notBefore says; d1 is the answer.
	d2 := newDrill("analytics", base.Add(24*time.Hour))
	for _, notBefore := range []time.Time{{}, base.Add(time.Hour)} {
		if got := beginDrill(t, s, d2, notBefore, false, fmt.Sprintf("second drill while the first is under way (notBefore %v)", notBefore)); got.ID != d1.ID {
			t.Fatalf("refused BeginDrill returned drill %q; want the one under way, %q", got.ID, d1.ID)
		}
	}
	if _, err := s.Drill(context.Background(), d2.ID); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("Drill of a refused drill = %v; want ErrNotFound", err)
	}
	// Another target's drill begins alongside, the single target's too.
	other := beginDrill(t, s, newDrill("orders", base.Add(time.Minute)), time.Time{}, true, "another target's drill")
	single := beginDrill(t, s, newDrill("", base.Add(2*time.Minute)), time.Time{}, true, "the single target's drill")
	if latest, ok := latestDrill(t, s, "analytics"); !ok || !reflect.DeepEqual(latest, storedDrill(d1)) {
		t.Fatalf("LatestDrill(analytics) = %q, %v; want %q", latest.ID, ok, d1.ID)
	}
	if latest, ok := latestDrill(t, s, ""); !ok || latest.ID != single.ID {
		t.Fatalf("LatestDrill(\"\") = %q, %v; want %q", latest.ID, ok, single.ID)
	}
	if got, want := unfinished(t, s), []string{single.ID, d1.ID, other.ID}; !reflect.DeepEqual(got, want) {
		t.Fatalf("UnfinishedDrills = %v; want %v", got, want)
	}

	// d1 advances, then ends.
	acquireDrill(t, s, d1.ID, "sweep-a", base, true, "first lease")
	step := d1
	step.Step, step.Export, step.InputURL = poller.DrillImport, opName("e1"), "gs://example-backups/daily/e1/e1.overall_export_metadata"
	step.Expected = []poller.KindCount{{Kind: "Order", Entities: 20}}
	step.CreateStart, step.ImportStart = base.Add(time.Second+1), base.Add(time.Minute+2)
	saveDrill(t, s, step, "sweep-a", base.Add(2*time.Minute), nil, "a step")
	if got := unfinished(t, s); !reflect.DeepEqual(got, []string{single.ID, d1.ID, other.ID}) {
		t.Fatalf("UnfinishedDrills after a step = %v; want d1 still", got)
	}
	done := step
	done.Step, done.Outcome, done.Ended, done.ReportedAt = poller.DrillDone, poller.DrillPassed, base.Add(time.Hour), base.Add(time.Hour+time.Second)
	done.Counted, done.Deleted = []poller.KindCount{{Kind: "Order", Entities: 20}}, true
	saveDrill(t, s, done, "sweep-a", base.Add(time.Hour+2*time.Second), nil, "the last step")
	want := storedDrill(done)
	want.LeaseHolder, want.LeaseExpires, want.Updated = "sweep-a", us(base.Add(time.Minute)), us(base.Add(time.Hour+2*time.Second))
	if got := getDrill(t, s, d1.ID); !reflect.DeepEqual(got, want) || !got.Finished() {
		t.Fatalf("finished drill = %+v; want %+v", got, want)
	}
	if got := unfinished(t, s); !reflect.DeepEqual(got, []string{single.ID, other.ID}) {
		t.Fatalf("UnfinishedDrills after d1 finished = %v; want the other targets' alone", got)
	}
	if latest, ok := latestDrill(t, s, "analytics"); !ok || !reflect.DeepEqual(latest, want) {
		t.Fatalf("LatestDrill(analytics) after it finished = %+v, %v; want %+v", latest, ok, want)
	}
	// Finished, it no longer blocks the next.
	got = beginDrill(t, s, d2, time.Time{}, true, "the next drill after the first finished")
	if latest, ok := latestDrill(t, s, "analytics"); !ok || !reflect.DeepEqual(latest, got) || got.ID != d2.ID {
		t.Fatalf("LatestDrill(analytics) after the next began = %q, %v; want %q", latest.ID, ok, d2.ID)
	}
	if got := unfinished(t, s); !reflect.DeepEqual(got, []string{single.ID, d2.ID, other.ID}) {
		t.Fatalf("UnfinishedDrills after the next began = %v", got)
	}
}

// testDrillNotBefore: with none under way, a drill begins unless its
// target began one at or after notBefore.
func testDrillNotBefore(t *testing.T, s Store) {
	d1 := newDrill("analytics", base)
	beginDrill(t, s, d1, base.Add(-time.Hour), true, "first drill with notBefore")
	acquireDrill(t, s, d1.ID, "a", base, true, "lease")
	done := d1
	done.Step = poller.DrillDone
	saveDrill(t, s, done, "a", base.Add(time.Minute), nil, "finish")
	d2 := newDrill("analytics", base.Add(time.Hour))
	for _, notBefore := range []time.Time{base.Add(-time.Hour), base} {
		if got := beginDrill(t, s, d2, notBefore, false, fmt.Sprintf("drill with notBefore %v, the latest began at %v", notBefore, base)); got.ID != d1.ID || !got.Finished() {
			t.Fatalf("BeginDrill refused for notBefore returned %q (finished %v); want the latest, %q", got.ID, got.Finished(), d1.ID)
		}
	}
	beginDrill(t, s, d2, base.Add(time.Microsecond), true, "drill with notBefore just after the latest began")
}

// testDrillLeases: a drill is followed by one holder at a time; only the
// holder saves it, its lease fields as stored.
func testDrillLeases(t *testing.T, s Store) {
	d := beginDrill(t, s, newDrill("analytics", base), time.Time{}, true, "drill")
	// Nobody holds it: a save is refused.
	saveDrill(t, s, d, "a", base, poller.ErrLeaseLost, "save with no lease held")
	saveDrill(t, s, d, "", base, poller.ErrLeaseLost, "save by nobody with no lease held")
	got := acquireDrill(t, s, d.ID, "a", base, true, "a's lease")
	if got.LeaseHolder != "a" || !got.LeaseExpires.Equal(us(base.Add(time.Minute))) {
		t.Fatalf("a's lease = %q until %v; want a until %v", got.LeaseHolder, got.LeaseExpires, us(base.Add(time.Minute)))
	}
	got = acquireDrill(t, s, d.ID, "b", base.Add(30*time.Second), false, "b while a's runs")
	if got.LeaseHolder != "a" {
		t.Fatalf("refused acquire returned holder %q; want a", got.LeaseHolder)
	}
	acquireDrill(t, s, d.ID, "b", base.Add(time.Minute-time.Microsecond), false, "b just before a's expires")
	got = acquireDrill(t, s, d.ID, "a", base.Add(30*time.Second), true, "a's own again")
	if !got.LeaseExpires.Equal(us(base.Add(90 * time.Second))) {
		t.Fatalf("a's renewed lease expires %v; want %v", got.LeaseExpires, us(base.Add(90*time.Second)))
	}
	// b may not save; a may, and what a sends of the lease is not kept.
	step := d
	step.Step, step.LeaseHolder, step.LeaseExpires = poller.DrillCreate, "forged", base.Add(99*time.Hour)
	step.ScratchProject, step.ScratchDatabase, step.CreateScratch, step.CreateOp = "example-proj", "dsexport-drill-1", true, opName("create-1")
	saveDrill(t, s, step, "b", base.Add(40*time.Second), poller.ErrLeaseLost, "b's save while a holds it")
	if got := getDrill(t, s, d.ID); got.Step != poller.DrillChoose {
		t.Fatalf("b's refused save changed the drill: step %q", got.Step)
	}
	saveDrill(t, s, step, "a", base.Add(40*time.Second), nil, "a's save")
	want := storedDrill(step)
	want.LeaseHolder, want.LeaseExpires, want.Updated = "a", us(base.Add(90*time.Second)), us(base.Add(40*time.Second))
	if got := getDrill(t, s, d.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("drill after a's save = %+v; want %+v", got, want)
	}
	// A lease that expired but that nobody took is still a's, as an
	// operation's is (RenewLease).
	saveDrill(t, s, step, "a", base.Add(time.Hour), nil, "a's save after its lease expired, nobody having taken it")
	// Expired, it is anyone's; a has lost it then.
	got = acquireDrill(t, s, d.ID, "b", base.Add(90*time.Second), true, "b at a's expiry")
	if got.LeaseHolder != "b" || got.Step != poller.DrillCreate || got.CreateOp != opName("create-1") {
		t.Fatalf("b's lease = %+v; want b holding the drill as a saved it", got)
	}
	saveDrill(t, s, step, "a", base.Add(100*time.Second), poller.ErrLeaseLost, "a's save after b took over")
	// A release by another leaves b's lease; b's own frees it.
	if err := s.ReleaseDrill(context.Background(), d.ID, "a"); err != nil {
		t.Fatal(err)
	}
	acquireDrill(t, s, d.ID, "c", base.Add(100*time.Second), false, "c after a's release of b's lease")
	if err := s.ReleaseDrill(context.Background(), d.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if got := getDrill(t, s, d.ID); got.LeaseHolder != "" || !got.LeaseExpires.IsZero() {
		t.Fatalf("lease after b's release = %q until %v; want none", got.LeaseHolder, got.LeaseExpires)
	}
	acquireDrill(t, s, d.ID, "c", base.Add(100*time.Second), true, "c after b's release")
}

func testDrillNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	id := "analytics/20261123T030004Z"
	if _, err := s.Drill(ctx, id); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("Drill of none = %v; want ErrNotFound", err)
	}
	if _, _, err := s.AcquireDrill(ctx, id, "a", base, time.Minute); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("AcquireDrill of none = %v; want ErrNotFound", err)
	}
	if err := s.SaveDrill(ctx, poller.Drill{ID: id, Target: "analytics"}, "a", base); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("SaveDrill of none = %v; want ErrNotFound", err)
	}
	if _, _, err := s.BeginDrill(ctx, poller.Drill{Target: "analytics", Began: base}, time.Time{}); err == nil {
		t.Fatal("BeginDrill of a drill without an ID succeeded")
	}
}

// testDrillBounded: a drill of 5000 expected and counted kinds, 200
// findings and 100 KiB texts is kept bounded, within an entity on the
// emulators; so is one of kinds of the longest names.
func testDrillBounded(t *testing.T, s Store) {
	d := newDrill("analytics", base)
	d.Expected, d.Counted = hugeKinds(5000), hugeKinds(5000)
	for i := range 5000 {
		d.Kinds = append(d.Kinds, fmt.Sprintf("Kind%05d", i))
	}
	for i := range 200 {
		d.Findings = append(d.Findings, poller.ContentFinding{Rule: poller.ContentDrillCount, Kind: fmt.Sprint("Kind", i), Text: strings.Repeat("t", 100<<10)})
	}
	d.Error, d.DeleteError = strings.Repeat("e", 100<<10), strings.Repeat("d", 100<<10)
	got := beginDrill(t, s, d, time.Time{}, true, "huge drill")
	if stored := getDrill(t, s, d.ID); !reflect.DeepEqual(stored, got) {
		t.Fatalf("huge drill read back is not the one BeginDrill returned")
	}
	checkBounded := func(what string, got poller.Drill, wantKinds int) {
		t.Helper()
		for _, l := range []struct {
			name  string
			kinds []poller.KindCount
		}{{"Expected", got.Expected}, {"Counted", got.Counted}} {
			var sum int64
			for _, k := range l.kinds {
				sum += k.Entities
			}
			if n := len(l.kinds); n > wantKinds || n < 2 || l.kinds[n-1].Kind != poller.CutKind || sum != 5000 {
				t.Fatalf("%s: %s kept %d kinds summing %d, the last %q; want at most %d, the last %q, summing 5000",
					what, l.name, n, sum, l.kinds[n-1].Kind, wantKinds, poller.CutKind)
			}
		}
		if len(got.Kinds) > poller.MaxListItems || len(got.Findings) != poller.MaxFindings || len(got.Findings[0].Text) > poller.MaxErrorText ||
			len(got.Error) > poller.MaxErrorText || len(got.DeleteError) > poller.MaxErrorText {
			t.Fatalf("%s: kept %d kinds to import, %d findings, texts of %d, %d and %d bytes; want at most %d, %d, and %d bytes",
				what, len(got.Kinds), len(got.Findings), len(got.Findings[0].Text), len(got.Error), len(got.DeleteError),
				poller.MaxListItems, poller.MaxFindings, poller.MaxErrorText)
		}
	}
	checkBounded("huge drill", got, poller.MaxStoredKinds)
	if len(got.Expected) != poller.MaxStoredKinds {
		t.Fatalf("huge drill kept %d expected kinds of short names; want %d", len(got.Expected), poller.MaxStoredKinds)
	}
	// Saved again, of the longest kind names, it is cut further to fit.
	acquireDrill(t, s, d.ID, "a", base, true, "lease of the huge drill")
	long := d
	long.Expected, long.Counted = nil, nil
	for i := range 5000 {
		k := poller.KindCount{Kind: fmt.Sprintf("%04d", i) + strings.Repeat("k", poller.MaxKind-4), Entities: 1}
		long.Expected, long.Counted = append(long.Expected, k), append(long.Counted, k)
	}
	saveDrill(t, s, long, "a", base.Add(time.Minute), nil, "the drill of long kind names")
	checkBounded("long-named drill", getDrill(t, s, d.ID), poller.MaxStoredKinds-1)
}

// testConcurrentBeginDrill: of 8 sweeps beginning a drill of one target at
// once, one begins it; the others are answered with it.
func testConcurrentBeginDrill(t *testing.T, s Store) {
	var mu sync.Mutex
	answers := map[string]int{}
	won := race(t, 8, func(i int) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d, ok, err := s.BeginDrill(ctx, newDrill("analytics", base.Add(time.Duration(i)*time.Second)), time.Time{})
		mu.Lock()
		answers[d.ID]++
		mu.Unlock()
		return ok, err
	})
	if won != 1 {
		t.Fatalf("%d of 8 racing sweeps began a drill; want 1", won)
	}
	ids := unfinished(t, s)
	if len(ids) != 1 || answers[ids[0]] != 8 {
		t.Fatalf("after the race, UnfinishedDrills = %v and the sweeps were answered with %v; want one drill, the answer of all 8", ids, answers)
	}
}
