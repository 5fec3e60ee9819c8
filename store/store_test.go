package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
)

// The store must keep satisfying the poller's port.
var _ poller.Store = (*store.Store)(nil)

func TestMain(m *testing.M) {
	os.Exit(emulatortest.Main(m))
}

// TestStore runs the contract against the Datastore emulator, in a project of
// its own so that other tests' entities stay out of List.
func TestStore(t *testing.T) {
	host := emulatortest.Host(t)
	t.Setenv("DATASTORE_EMULATOR_HOST", host)
	ctx := context.Background()
	s, err := store.New(ctx, emulatortest.Project(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	testStore(t, s)
}

// base is the creation time of the operations in testStore; List's subtest
// creates later ones so that they are the newest whatever ran before.
var base = time.Date(2026, 11, 23, 3, 0, 4, 837_123_456, time.UTC)

// successful is /work/shared/wire/successful.json as the poller parses it,
// with nanoseconds the store has to cut to microseconds.
func successful(name string) poller.Operation {
	return poller.Operation{
		Name:              name,
		Project:           "example-proj",
		Done:              true,
		State:             poller.StateSuccessful,
		Trigger:           poller.TriggerCron,
		Kinds:             []string{"User", "Order"},
		Namespaces:        []string{""},
		OutputURLPrefix:   "gs://example-backups/daily",
		OutputURL:         "gs://example-backups/daily/2026-11-23T03:00:04_43519/2026-11-23T03:00:04_43519.overall_export_metadata",
		EntitiesCompleted: 21933027,
		EntitiesEstimated: 21898182,
		BytesCompleted:    12421772610,
		BytesEstimated:    12395423718,
		StartTime:         time.Date(2026, 11, 23, 3, 0, 4, 837_000_999, time.UTC),
		// Not UTC on purpose: the store keeps the instant, in UTC.
		EndTime:      time.Date(2026, 11, 23, 4, 53, 11, 204_000_000, time.FixedZone("CET", 3600)),
		ErrorCode:    9,
		ErrorMessage: "a long message that a failed export would carry, here only to see it round-trip",
	}
}

// running is a first snapshot: nothing done, no end time.
func running(name string) poller.Operation {
	return poller.Operation{
		Name:            name,
		Project:         "example-proj",
		State:           poller.StateProcessing,
		Trigger:         poller.TriggerManual,
		OutputURLPrefix: "gs://example-backups/daily",
		StartTime:       base,
	}
}

func opName(id string) string { return "projects/example-proj/operations/" + id }

// us is t as the store gives it back.
func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// testStore is the contract every store.Store must keep.
func testStore(t *testing.T, s *store.Store) {
	ctx := context.Background()

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		op := successful(opName("roundtrip"))
		got, err := s.Create(ctx, op, base)
		if err != nil {
			t.Fatal(err)
		}
		want := poller.Record{Operation: op, Created: us(base), Updated: us(base)}
		want.StartTime = us(op.StartTime)
		want.EndTime = us(op.EndTime)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Create(...) =\n%+v\nwant\n%+v", got, want)
		}
		read, err := s.Get(ctx, op.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(read, want) {
			t.Fatalf("Get(%q) =\n%+v\nwant\n%+v", op.Name, read, want)
		}
		if got, want := read.Reported(), false; got != want {
			t.Fatalf("Reported() = %v; want %v", got, want)
		}
		snaps, err := s.Snapshots(ctx, op.Name)
		if err != nil {
			t.Fatal(err)
		}
		wantSnaps := []poller.Snapshot{poller.SnapshotOf(op, 0, us(base))}
		if !reflect.DeepEqual(snaps, wantSnaps) {
			t.Fatalf("Snapshots(%q) = %+v; want %+v", op.Name, snaps, wantSnaps)
		}
	})

	t.Run("ZeroTimesAndEmptySlices", func(t *testing.T) {
		op := poller.Operation{Name: opName("zero"), Kinds: []string{}}
		got, err := s.Create(ctx, op, base)
		if err != nil {
			t.Fatal(err)
		}
		read, err := s.Get(ctx, op.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(read, got) {
			t.Fatalf("Get(%q) = %+v; want %+v as Create returned", op.Name, read, got)
		}
		if !read.StartTime.IsZero() || !read.EndTime.IsZero() || !read.ReportedAt.IsZero() {
			t.Fatalf("Get(%q) times = %v, %v, %v; want zero", op.Name, read.StartTime, read.EndTime, read.ReportedAt)
		}
		if got, want := read.ReportedAt, (time.Time{}); got != want {
			t.Fatalf("ReportedAt = %#v; want %#v", got, want)
		}
		if read.Kinds != nil || read.Namespaces != nil {
			t.Fatalf("Kinds, Namespaces = %#v, %#v; want nil, nil", read.Kinds, read.Namespaces)
		}
	})

	t.Run("CreateTwiceKeepsFirst", func(t *testing.T) {
		name := opName("twice")
		first, err := s.Create(ctx, running(name), base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddSnapshot(ctx, name, running(name), base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		again, err := s.Create(ctx, successful(name), base.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := again.State, first.State; got != want {
			t.Fatalf("second Create: State = %v; want %v", got, want)
		}
		if got, want := again.Polls, 1; got != want {
			t.Fatalf("second Create: Polls = %v; want %v", got, want)
		}
		if got, want := again.Created, first.Created; !got.Equal(want) {
			t.Fatalf("second Create: Created = %v; want %v", got, want)
		}
		snaps, err := s.Snapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(snaps), 2; got != want {
			t.Fatalf("len(Snapshots) = %v; want %v", got, want)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		name := opName("unknown")
		if _, err := s.Get(ctx, name); !errors.Is(err, poller.ErrNotFound) {
			t.Fatalf("Get(%q) error = %v; want ErrNotFound", name, err)
		}
		if _, err := s.AddSnapshot(ctx, name, running(name), base); !errors.Is(err, poller.ErrNotFound) {
			t.Fatalf("AddSnapshot(%q) error = %v; want ErrNotFound", name, err)
		}
		if _, err := s.CountPoll(ctx, name, "503", base); !errors.Is(err, poller.ErrNotFound) {
			t.Fatalf("CountPoll(%q) error = %v; want ErrNotFound", name, err)
		}
		if _, err := s.SetOutcome(ctx, name, poller.OutcomeSuccess, base); !errors.Is(err, poller.ErrNotFound) {
			t.Fatalf("SetOutcome(%q) error = %v; want ErrNotFound", name, err)
		}
		if err := s.MarkReported(ctx, name, base); !errors.Is(err, poller.ErrNotFound) {
			t.Fatalf("MarkReported(%q) error = %v; want ErrNotFound", name, err)
		}
		if _, err := s.Get(ctx, name); err == nil {
			t.Fatalf("Get(%q) after failed updates succeeded; want nothing created", name)
		}
		snaps, err := s.Snapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(snaps), 0; got != want {
			t.Fatalf("len(Snapshots(%q)) = %v; want %v", name, got, want)
		}
	})

	t.Run("AddSnapshot", func(t *testing.T) {
		name := opName("snapshots")
		if _, err := s.Create(ctx, running(name), base); err != nil {
			t.Fatal(err)
		}
		states := []poller.State{poller.StateProcessing, poller.StateFinalizing, poller.StateSuccessful}
		var last poller.Operation
		for i, st := range states {
			op := running(name)
			op.State = st
			op.Done = st == poller.StateSuccessful
			op.EntitiesCompleted = int64(i+1) * 1 << 32
			at := base.Add(time.Duration(i+1) * time.Minute)
			rec, err := s.AddSnapshot(ctx, name, op, at)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := rec.Polls, i+1; got != want {
				t.Fatalf("AddSnapshot #%d: Polls = %v; want %v", i+1, got, want)
			}
			if got, want := rec.State, st; got != want {
				t.Fatalf("AddSnapshot #%d: State = %v; want %v", i+1, got, want)
			}
			if got, want := rec.Updated, us(at); got != want {
				t.Fatalf("AddSnapshot #%d: Updated = %v; want %v", i+1, got, want)
			}
			last = op
		}
		last.StartTime = us(last.StartTime)
		rec, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Operation, last; !reflect.DeepEqual(got, want) {
			t.Fatalf("Get(%q).Operation = %+v; want the last snapshot %+v", name, got, want)
		}
		if got, want := rec.Created, us(base); got != want {
			t.Fatalf("Created = %v; want %v", got, want)
		}
		snaps, err := s.Snapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(snaps), 4; got != want {
			t.Fatalf("len(Snapshots) = %v; want %v", got, want)
		}
		wantStates := append([]poller.State{poller.StateProcessing}, states...)
		for i, sn := range snaps {
			if got, want := sn.Poll, i; got != want {
				t.Fatalf("Snapshots[%d].Poll = %v; want %v", i, got, want)
			}
			if got, want := sn.State, wantStates[i]; got != want {
				t.Fatalf("Snapshots[%d].State = %v; want %v", i, got, want)
			}
			if got, want := sn.Time, us(base.Add(time.Duration(i)*time.Minute)); got != want {
				t.Fatalf("Snapshots[%d].Time = %v; want %v", i, got, want)
			}
		}
		if got, want := snaps[3], poller.SnapshotOf(last, 3, us(base.Add(3*time.Minute))); got != want {
			t.Fatalf("Snapshots[3] = %+v; want %+v", got, want)
		}
	})

	t.Run("CountPoll", func(t *testing.T) {
		name := opName("countpoll")
		created, err := s.Create(ctx, running(name), base)
		if err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Minute)
		rec, err := s.CountPoll(ctx, name, "googleapi: Error 503: unavailable", at)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Polls, 1; got != want {
			t.Fatalf("CountPoll: Polls = %v; want %v", got, want)
		}
		if got, want := rec.LastError, "googleapi: Error 503: unavailable"; got != want {
			t.Fatalf("CountPoll: LastError = %q; want %q", got, want)
		}
		if got, want := rec.Updated, us(at); got != want {
			t.Fatalf("CountPoll: Updated = %v; want %v", got, want)
		}
		if got, want := rec.Operation, created.Operation; !reflect.DeepEqual(got, want) {
			t.Fatalf("CountPoll changed the operation to %+v; want %+v", got, want)
		}
		rec, err = s.CountPoll(ctx, name, "timeout", at)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Polls, 2; got != want {
			t.Fatalf("second CountPoll: Polls = %v; want %v", got, want)
		}
		snaps, err := s.Snapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(snaps), 1; got != want {
			t.Fatalf("len(Snapshots) = %v; want %v (poll 0 only)", got, want)
		}
		// A snapshot after failed polls takes the next poll number, leaving a
		// gap in the history where the failures were.
		rec, err = s.AddSnapshot(ctx, name, running(name), base.Add(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if rec.LastError != "" {
			t.Fatalf("AddSnapshot kept LastError %q; a successful read clears it", rec.LastError)
		}
		snaps, err = s.Snapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := snaps[len(snaps)-1].Poll, 3; got != want {
			t.Fatalf("last snapshot Poll = %v; want %v", got, want)
		}
	})

	t.Run("OutcomeStaysFirst", func(t *testing.T) {
		name := opName("outcome-first")
		if _, err := s.Create(ctx, running(name), base); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetOutcome(ctx, name, poller.OutcomeTimeout, base); err != nil {
			t.Fatal(err)
		}
		rec, err := s.SetOutcome(ctx, name, poller.OutcomeSuccess, base)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Outcome, poller.OutcomeTimeout; got != want {
			t.Fatalf("second SetOutcome: Outcome = %v; want the first, %v", got, want)
		}
	})

	t.Run("ClaimReport", func(t *testing.T) {
		name := opName("claim")
		if _, err := s.Create(ctx, running(name), base); err != nil {
			t.Fatal(err)
		}
		ttl := time.Minute
		if _, ok, err := s.ClaimReport(ctx, name, base, ttl); err != nil || !ok {
			t.Fatalf("first ClaimReport = %v, %v; want true, nil", ok, err)
		}
		if _, ok, err := s.ClaimReport(ctx, name, base.Add(ttl/2), ttl); err != nil || ok {
			t.Fatalf("ClaimReport while claimed = %v, %v; want false, nil", ok, err)
		}
		// A claim older than ttl belongs to a poller that died while sending.
		rec, ok, err := s.ClaimReport(ctx, name, base.Add(2*ttl), ttl)
		if err != nil || !ok {
			t.Fatalf("ClaimReport after ttl = %v, %v; want true, nil", ok, err)
		}
		if got, want := rec.ReportClaimed, us(base.Add(2*ttl)); got != want {
			t.Fatalf("ReportClaimed = %v; want %v", got, want)
		}
		if err := s.ReleaseReport(ctx, name, base.Add(2*ttl)); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.ClaimReport(ctx, name, base.Add(2*ttl), ttl); err != nil || !ok {
			t.Fatalf("ClaimReport after release = %v, %v; want true, nil", ok, err)
		}
		if err := s.MarkReported(ctx, name, base.Add(3*ttl)); err != nil {
			t.Fatal(err)
		}
		rec, ok, err = s.ClaimReport(ctx, name, base.Add(10*ttl), ttl)
		if err != nil || ok {
			t.Fatalf("ClaimReport after the report was sent = %v, %v; want false, nil", ok, err)
		}
		if !rec.Reported() || !rec.ReportClaimed.IsZero() {
			t.Fatalf("after MarkReported: Reported() = %v, ReportClaimed = %v; want true, zero", rec.Reported(), rec.ReportClaimed)
		}
	})

	t.Run("ConcurrentClaims", func(t *testing.T) {
		name := opName("claim-race")
		if _, err := s.Create(ctx, running(name), base); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := s.ClaimReport(ctx, name, base, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if got, want := won, 1; got != want {
			t.Fatalf("%d of 6 concurrent claims won; want %d", got, want)
		}
	})

	t.Run("OutcomeAndReported", func(t *testing.T) {
		name := opName("outcome")
		if _, err := s.Create(ctx, running(name), base); err != nil {
			t.Fatal(err)
		}
		rec, err := s.SetOutcome(ctx, name, poller.OutcomeFailure, base.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Outcome, poller.OutcomeFailure; got != want {
			t.Fatalf("SetOutcome: Outcome = %v; want %v", got, want)
		}
		if got, want := rec.Reported(), false; got != want {
			t.Fatalf("SetOutcome: Reported() = %v; want %v", got, want)
		}
		reported := base.Add(2*time.Minute + 123*time.Nanosecond)
		if err := s.MarkReported(ctx, name, reported); err != nil {
			t.Fatal(err)
		}
		rec, err = s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Outcome, poller.OutcomeFailure; got != want {
			t.Fatalf("Get: Outcome = %v; want %v", got, want)
		}
		if got, want := rec.Reported(), true; got != want {
			t.Fatalf("Get: Reported() = %v; want %v", got, want)
		}
		if got, want := rec.ReportedAt, us(reported); got != want {
			t.Fatalf("Get: ReportedAt = %v; want %v", got, want)
		}
		if got, want := rec.Updated, us(reported); got != want {
			t.Fatalf("Get: Updated = %v; want %v", got, want)
		}
		if got, want := rec.Polls, 0; got != want {
			t.Fatalf("Get: Polls = %v; want %v", got, want)
		}
	})

	t.Run("List", func(t *testing.T) {
		// Later than every other subtest's operation, and created out of order.
		later := base.Add(24 * time.Hour)
		offsets := []int{2, 0, 3, 1}
		for _, i := range offsets {
			name := opName(fmt.Sprintf("list-%d", i))
			if _, err := s.Create(ctx, running(name), later.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := s.List(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range recs {
			names = append(names, r.Name)
		}
		if got, want := names, []string{opName("list-3"), opName("list-2"), opName("list-1")}; !reflect.DeepEqual(got, want) {
			t.Fatalf("List(3) names = %q; want %q", got, want)
		}
		if got, want := recs[0].Created, us(later.Add(3*time.Minute)); got != want {
			t.Fatalf("List(3)[0].Created = %v; want %v", got, want)
		}
		all, err := s.List(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) < len(offsets)+1 {
			t.Fatalf("List(0) returned %d records; want all of them", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].Created.After(all[i-1].Created) {
				t.Fatalf("List(0)[%d].Created = %v after [%d] = %v; want newest first", i, all[i].Created, i-1, all[i-1].Created)
			}
		}
	})

	t.Run("ConcurrentAddSnapshot", func(t *testing.T) {
		name := opName("concurrent")
		if _, err := s.Create(ctx, running(name), base); err != nil {
			t.Fatal(err)
		}
		const workers, perWorker = 8, 3
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					op := running(name)
					op.EntitiesCompleted = int64(w*perWorker + i)
					if _, err := s.AddSnapshot(ctx, name, op, base.Add(time.Second)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("AddSnapshot: %v", err)
		}
		if t.Failed() {
			t.FailNow()
		}
		rec, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec.Polls, workers*perWorker; got != want {
			t.Fatalf("Polls = %v; want %v", got, want)
		}
		snaps, err := s.Snapshots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(snaps), workers*perWorker+1; got != want {
			t.Fatalf("len(Snapshots) = %v; want %v", got, want)
		}
		seen := make(map[int64]bool)
		for i, sn := range snaps {
			if got, want := sn.Poll, i; got != want {
				t.Fatalf("Snapshots[%d].Poll = %v; want %v", i, got, want)
			}
			if i > 0 {
				seen[sn.EntitiesCompleted] = true
			}
		}
		if got, want := len(seen), workers*perWorker; got != want {
			t.Fatalf("distinct snapshots = %v; want %v (one per call)", got, want)
		}
	})
}
