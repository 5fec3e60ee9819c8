package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

func testCreateGetRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	op := successful(opName("roundtrip"))
	got := create(t, s, op, base)
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
}

func testCreateEmptyName(t *testing.T, s Store) {
	if _, err := s.Create(context.Background(), running(""), base); err == nil {
		t.Fatalf("Create of an operation without a name succeeded; want an error")
	}
	recs, err := s.List(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), 0; got != want {
		t.Fatalf("len(List) after a refused Create = %v; want %v", got, want)
	}
}

func testZeroTimesAndEmptySlices(t *testing.T, s Store) {
	op := poller.Operation{Name: opName("zero"), Kinds: []string{}}
	got := create(t, s, op, base)
	read, err := s.Get(context.Background(), op.Name)
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
	if got.Kinds != nil {
		t.Fatalf("Create(...).Kinds = %#v; want nil", got.Kinds)
	}
}

// testNoAliasing checks that neither the caller's operation nor a returned
// record shares memory with what the store keeps.
func testNoAliasing(t *testing.T, s Store) {
	ctx := context.Background()
	op := successful(opName("alias"))
	got := create(t, s, op, base)
	op.Kinds[0] = "changed by the caller"
	got.Namespaces[0] = "changed by the caller"
	read, err := s.Get(ctx, op.Name)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"User", "Order"}; !slices.Equal(read.Kinds, want) {
		t.Fatalf("Get(%q).Kinds = %q after the caller changed its operation; want %q", op.Name, read.Kinds, want)
	}
	if want := []string{""}; !slices.Equal(read.Namespaces, want) {
		t.Fatalf("Get(%q).Namespaces = %q after the caller changed Create's record; want %q", op.Name, read.Namespaces, want)
	}
	read.Kinds[1] = "changed by the caller"
	listed, err := s.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Kinds[1] != "Order" {
		t.Fatalf("List = %+v after the caller changed Get's record; want Kinds [User Order]", listed)
	}
}

func testCreateTwiceKeepsFirst(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("twice")
	first := create(t, s, running(name), base)
	if _, err := s.AddSnapshot(ctx, name, 1, running(name), base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	again := create(t, s, successful(name), base.Add(time.Hour))
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
}

func testNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("unknown")
	if _, err := s.Get(ctx, name); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("Get(%q) error = %v; want ErrNotFound", name, err)
	}
	if _, err := s.AddSnapshot(ctx, name, 1, running(name), base); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("AddSnapshot(%q) error = %v; want ErrNotFound", name, err)
	}
	if _, err := s.CountPoll(ctx, name, 1, "503", base); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("CountPoll(%q) error = %v; want ErrNotFound", name, err)
	}
	if _, err := s.SetOutcome(ctx, name, poller.OutcomeSuccess, base); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("SetOutcome(%q) error = %v; want ErrNotFound", name, err)
	}
	if err := s.MarkReported(ctx, name, base); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("MarkReported(%q) error = %v; want ErrNotFound", name, err)
	}
	if _, ok, err := s.ClaimReport(ctx, name, "h", base, time.Minute); ok || !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("ClaimReport(%q) = %v, %v; want false, ErrNotFound", name, ok, err)
	}
	if _, ok, err := s.AcquireLease(ctx, name, "a", base, time.Minute); ok || !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("AcquireLease(%q) = %v, %v; want false, ErrNotFound", name, ok, err)
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
}

func testAddSnapshot(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("snapshots")
	create(t, s, running(name), base)
	states := []poller.State{poller.StateProcessing, poller.StateFinalizing, poller.StateSuccessful}
	var last poller.Operation
	for i, st := range states {
		op := running(name)
		op.State = st
		op.Done = st == poller.StateSuccessful
		op.EntitiesCompleted = int64(i+1) * 1 << 32
		at := base.Add(time.Duration(i+1) * time.Minute)
		rec, err := s.AddSnapshot(ctx, name, i+1, op, at)
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
	// The record keeps its name whatever the snapshot's says.
	other := running(opName("other"))
	rec, err = s.AddSnapshot(ctx, name, 4, other, base.Add(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Name, name; got != want {
		t.Fatalf("AddSnapshot of an operation named %q: Name = %q; want %q", other.Name, got, want)
	}
	// A poll counted already (a retried write that had committed) changes
	// nothing, not even Updated.
	again := running(name)
	again.State = poller.StateCancelling
	rec, err = s.AddSnapshot(ctx, name, 4, again, base.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Polls != 4 || rec.State == poller.StateCancelling || rec.Updated != us(base.Add(4*time.Minute)) {
		t.Fatalf("AddSnapshot of poll 4 again = Polls %d, State %v, Updated %v; want 4, the first poll 4's state, %v",
			rec.Polls, rec.State, rec.Updated, us(base.Add(4*time.Minute)))
	}
	if snaps, err := s.Snapshots(ctx, name); err != nil || len(snaps) != 5 {
		t.Fatalf("Snapshots after poll 4 again = %d, %v; want 5", len(snaps), err)
	}
}

func testCountPoll(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("countpoll")
	created := create(t, s, running(name), base)
	at := base.Add(time.Minute)
	rec, err := s.CountPoll(ctx, name, 1, "googleapi: Error 503: unavailable", at)
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
	rec, err = s.CountPoll(ctx, name, 2, "timeout", at)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Polls, 2; got != want {
		t.Fatalf("second CountPoll: Polls = %v; want %v", got, want)
	}
	// Poll 2 again, a retry of a write that committed: counted once.
	rec, err = s.CountPoll(ctx, name, 2, "timeout again", at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Polls != 2 || rec.LastError != "timeout" || rec.Updated != us(at) {
		t.Fatalf("CountPoll of poll 2 again: Polls = %d, LastError = %q, Updated %v; want 2, %q, %v unchanged",
			rec.Polls, rec.LastError, rec.Updated, "timeout", us(at))
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
	rec, err = s.AddSnapshot(ctx, name, 3, running(name), base.Add(3*time.Minute))
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
}

func testOutcomeStaysFirst(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("outcome-first")
	create(t, s, running(name), base)
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
}

func testSetMessage(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("message")
	create(t, s, running(name), base)
	ref := poller.MessageRef{Channel: "C0123", TS: "1764000000.000100"}
	at := base.Add(time.Minute)
	if err := s.SetMessage(ctx, name, ref, at); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Message, ref; got != want {
		t.Fatalf("Get(%q).Message = %+v; want %+v", name, got, want)
	}
	if got, want := rec.Updated, us(at); got != want {
		t.Fatalf("Get(%q).Updated = %v; want %v", name, got, want)
	}
	if err := s.SetMessage(ctx, opName("unknown"), ref, at); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("SetMessage of an unknown operation = %v; want ErrNotFound", err)
	}
}

func testClaimReport(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("claim")
	create(t, s, running(name), base)
	ttl := time.Minute
	if _, ok, err := s.ClaimReport(ctx, name, "a", base, ttl); err != nil || !ok {
		t.Fatalf("first ClaimReport = %v, %v; want true, nil", ok, err)
	}
	rec, ok, err := s.ClaimReport(ctx, name, "b", base.Add(ttl/2), ttl)
	if err != nil || ok {
		t.Fatalf("ClaimReport while claimed = %v, %v; want false, nil", ok, err)
	}
	// Refused, the claim returns the record as it is: the first claim's.
	if got, want := rec.ReportClaimed, us(base); got != want || rec.ReportClaimer != "a" {
		t.Fatalf("refused ClaimReport: ReportClaimed = %v by %q; want the first claim's %v by a", got, rec.ReportClaimer, want)
	}
	// The claimer's own retry (its first claim committed but answered
	// late) claims again.
	if _, ok, err := s.ClaimReport(ctx, name, "a", base.Add(ttl/2), ttl); err != nil || !ok {
		t.Fatalf("ClaimReport by the claimer again = %v, %v; want true, nil", ok, err)
	}
	// Another's release leaves the claim alone.
	if err := s.ReleaseReport(ctx, name, "b", base.Add(ttl/2)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ClaimReport(ctx, name, "b", base.Add(ttl/2), ttl); err != nil || ok {
		t.Fatalf("ClaimReport after another's release = %v, %v; want false, nil", ok, err)
	}
	// A claim older than ttl belongs to a poller that died while sending.
	rec, ok, err = s.ClaimReport(ctx, name, "b", base.Add(2*ttl), ttl)
	if err != nil || !ok {
		t.Fatalf("ClaimReport after ttl = %v, %v; want true, nil", ok, err)
	}
	if got, want := rec.ReportClaimed, us(base.Add(2*ttl)); got != want {
		t.Fatalf("ReportClaimed = %v; want %v", got, want)
	}
	if err := s.ReleaseReport(ctx, name, "b", base.Add(2*ttl)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ClaimReport(ctx, name, "c", base.Add(2*ttl), ttl); err != nil || !ok {
		t.Fatalf("ClaimReport after release = %v, %v; want true, nil", ok, err)
	}
	if err := s.MarkReported(ctx, name, base.Add(3*ttl)); err != nil {
		t.Fatal(err)
	}
	// Marked again (a retry of a mark that committed): no change.
	if err := s.MarkReported(ctx, name, base.Add(4*ttl)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, name); err != nil || got.ReportedAt != us(base.Add(3*ttl)) {
		t.Fatalf("ReportedAt after a second MarkReported = %v, %v; want the first %v", got.ReportedAt, err, us(base.Add(3*ttl)))
	}
	rec, ok, err = s.ClaimReport(ctx, name, "c", base.Add(10*ttl), ttl)
	if err != nil || ok {
		t.Fatalf("ClaimReport after the report was sent = %v, %v; want false, nil", ok, err)
	}
	if !rec.Reported() || !rec.ReportClaimed.IsZero() {
		t.Fatalf("after MarkReported: Reported() = %v, ReportClaimed = %v; want true, zero", rec.Reported(), rec.ReportClaimed)
	}
}

func testConcurrentClaims(t *testing.T, s Store) {
	name := opName("claim-race")
	create(t, s, running(name), base)
	won := race(t, 6, func(i int) (bool, error) {
		_, ok, err := s.ClaimReport(context.Background(), name, fmt.Sprint("h", i), base, time.Minute)
		return ok, err
	})
	if got, want := won, 1; got != want {
		t.Fatalf("%d of 6 concurrent claims won; want %d", got, want)
	}
}

func testOutcomeAndReported(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("outcome")
	create(t, s, running(name), base)
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
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	// An older operation, then newer ones created out of order.
	create(t, s, running(opName("list-old")), base)
	later := base.Add(24 * time.Hour)
	offsets := []int{2, 0, 3, 1}
	for _, i := range offsets {
		create(t, s, running(opName(fmt.Sprintf("list-%d", i))), later.Add(time.Duration(i)*time.Minute))
	}
	recs, err := s.List(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(recs), []string{opName("list-3"), opName("list-2"), opName("list-1")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List(3) names = %q; want %q", got, want)
	}
	if got, want := recs[0].Created, us(later.Add(3*time.Minute)); got != want {
		t.Fatalf("List(3)[0].Created = %v; want %v", got, want)
	}
	all, err := s.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(all), len(offsets)+1; got != want {
		t.Fatalf("List(0) returned %d records; want all %d of them", got, want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Created.After(all[i-1].Created) {
			t.Fatalf("List(0)[%d].Created = %v after [%d] = %v; want newest first", i, all[i].Created, i-1, all[i-1].Created)
		}
	}
	if got, want := all[len(all)-1].Name, opName("list-old"); got != want {
		t.Fatalf("List(0) ends with %q; want the oldest, %q", got, want)
	}
}

// testListTies checks the order of records created at the same time: by
// name, as Datastore orders equal properties by key, so that pages over them
// neither skip nor repeat a record. The direction is the store's: the
// Datastore emulator (and memstore) order ties by ascending key, Firestore in
// Datastore mode orders them by key in the direction of the last sort order
// ("-created DESC" is "created DESC, __key__ DESC" there), and asking for
// ascending keys under a descending property would need a composite index.
func testListTies(t *testing.T, s Store) {
	ctx := context.Background()
	for _, id := range []string{"tie-b", "tie-c", "tie-a"} {
		create(t, s, running(opName(id)), base)
	}
	create(t, s, running(opName("tie-newer")), base.Add(time.Microsecond))
	want := []string{opName("tie-newer"), opName("tie-a"), opName("tie-b"), opName("tie-c")}
	recs, err := s.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(recs); !slices.Equal(got, want) {
		descending := []string{opName("tie-newer"), opName("tie-c"), opName("tie-b"), opName("tie-a")}
		if !slices.Equal(got, descending) {
			t.Fatalf("List(0) names = %q; want %q, or the ties by descending name", got, want)
		}
		want = descending
	}
	var paged []string
	for _, page := range pages(t, s, 1) {
		paged = append(paged, page...)
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("pages of 1 = %q; want %q", paged, want)
	}
}

func testConcurrentAddSnapshot(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("concurrent")
	create(t, s, running(name), base)
	// Every worker records polls 1 to perWorker, as pollers that overlap
	// (a lease taken over, a retried write) do: each poll is recorded once.
	const workers, perWorker = 8, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				op := running(name)
				op.EntitiesCompleted = int64(w*perWorker + i)
				if _, err := s.AddSnapshot(ctx, name, i+1, op, base.Add(time.Second)); err != nil {
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
	if got, want := rec.Polls, perWorker; got != want {
		t.Fatalf("Polls = %v; want %v", got, want)
	}
	snaps, err := s.Snapshots(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(snaps), perWorker+1; got != want {
		t.Fatalf("len(Snapshots) = %v; want %v (poll 0 and each poll once)", got, want)
	}
	for i, sn := range snaps {
		if got, want := sn.Poll, i; got != want {
			t.Fatalf("Snapshots[%d].Poll = %v; want %v", i, got, want)
		}
		// Each snapshot is the one its winning worker wrote for that poll.
		if i > 0 && sn.EntitiesCompleted%perWorker != int64(i-1) {
			t.Fatalf("Snapshots[%d] holds entities %d, written for another poll", i, sn.EntitiesCompleted)
		}
	}
}

// testCancelledContext: a call on a context that ended fails and changes
// nothing, as Datastore's client does; the poller relies on it to tell a
// step cut short by a stop from one that was done.
func testCancelledContext(t *testing.T, s Store) {
	ctx := context.Background()
	name := "projects/example-proj/operations/cancelled"
	at := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	if _, err := s.Create(ctx, poller.Operation{Name: name, Project: "example-proj"}, at); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	calls := map[string]func() error{
		"Create": func() error {
			_, err := s.Create(done, poller.Operation{Name: name + "2", Project: "example-proj"}, at)
			return err
		},
		"Get":          func() error { _, err := s.Get(done, name); return err },
		"AddSnapshot":  func() error { _, err := s.AddSnapshot(done, name, 1, poller.Operation{Name: name}, at); return err },
		"CountPoll":    func() error { _, err := s.CountPoll(done, name, 1, "x", at); return err },
		"ClaimReport":  func() error { _, _, err := s.ClaimReport(done, name, "h", at, time.Minute); return err },
		"AcquireLease": func() error { _, _, err := s.AcquireLease(done, name, "h", at, time.Minute); return err },
		"ReleaseLease": func() error { return s.ReleaseLease(done, name, "h", at) },
		"MarkReported": func() error { return s.MarkReported(done, name, at) },
		"Pending":      func() error { _, err := s.Pending(done); return err },
		"BeginStart": func() error {
			_, err := s.BeginStart(done, poller.StartRequest{Project: "example-proj", FilterKey: "f"}, at)
			return err
		},
	}
	for what, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s on a cancelled context = nil; want an error", what)
		}
	}
	rec, err := s.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Polls != 0 || rec.Reported() || rec.LeaseHolder != "" || !rec.ReportClaimed.IsZero() {
		t.Errorf("record after the cancelled calls = %+v; want it unchanged", rec)
	}
	if _, err := s.Get(ctx, name+"2"); !errors.Is(err, poller.ErrNotFound) {
		t.Errorf("Get of the name a cancelled Create was given = %v; want ErrNotFound", err)
	}
}

// race runs try n times at once and counts the tries that won; an error
// fails the test.
func race(t *testing.T, n int, try func(i int) (bool, error)) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range n {
		wg.Go(func() {
			ok, err := try(i)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return won
}

// testConcurrentDistinctPolls: 24 polls of one operation, each its own
// number, committed at once: each transaction reads the count and decides
// (a poll counted past already changes nothing), none fails, and the record
// ends at the highest poll with its history in order.
func testConcurrentDistinctPolls(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("concurrent-distinct")
	create(t, s, running(name), base)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			op := running(name)
			op.EntitiesCompleted = int64(i + 1)
			if _, err := s.AddSnapshot(ctx, name, i+1, op, base.Add(time.Second)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("AddSnapshot: %v", err)
	}
	rec, err := s.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Polls != n || rec.EntitiesCompleted != n {
		t.Fatalf("Polls = %d, entities %d; want %d, poll %d's", rec.Polls, rec.EntitiesCompleted, n, n)
	}
	snaps, err := s.Snapshots(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(snaps); i++ {
		if snaps[i].Poll <= snaps[i-1].Poll || snaps[i].EntitiesCompleted != int64(snaps[i].Poll) {
			t.Fatalf("Snapshots[%d] = poll %d holding %d after poll %d; want increasing polls, each its own snapshot",
				i, snaps[i].Poll, snaps[i].EntitiesCompleted, snaps[i-1].Poll)
		}
	}
}
