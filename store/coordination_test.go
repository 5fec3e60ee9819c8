package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	t.Setenv("DATASTORE_EMULATOR_HOST", emulatortest.Host(t))
	s, err := store.New(context.Background(), emulatortest.Project(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLeases(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	name := opName("leased")
	if _, err := s.Create(ctx, running(name), base); err != nil {
		t.Fatal(err)
	}
	ttl := 3 * time.Minute
	rec, ok, err := s.AcquireLease(ctx, name, "a", base, ttl)
	if err != nil || !ok || rec.LeaseHolder != "a" || !rec.LeaseExpires.Equal(us(base.Add(ttl))) {
		t.Fatalf("AcquireLease(a) = %+v, %v, %v; want a's lease until %v", rec, ok, err, base.Add(ttl))
	}
	if rec, ok, err := s.AcquireLease(ctx, name, "b", base.Add(time.Minute), ttl); err != nil || ok || rec.LeaseHolder != "a" {
		t.Fatalf("AcquireLease(b) while a holds it = %v, %v (holder %q); want false and a", ok, err, rec.LeaseHolder)
	}
	if err := s.RenewLease(ctx, name, "a", base.Add(2*time.Minute), ttl); err != nil {
		t.Fatalf("RenewLease(a) = %v", err)
	}
	if err := s.RenewLease(ctx, name, "b", base.Add(2*time.Minute), ttl); !errors.Is(err, poller.ErrLeaseLost) {
		t.Fatalf("RenewLease(b) = %v; want ErrLeaseLost", err)
	}
	// Renewed at +2m, a's lease runs to +5m: b still waits at +4m, takes it at +6m.
	if _, ok, _ := s.AcquireLease(ctx, name, "b", base.Add(4*time.Minute), ttl); ok {
		t.Fatalf("AcquireLease(b) before the renewed lease expired = true")
	}
	if _, ok, err := s.AcquireLease(ctx, name, "b", base.Add(6*time.Minute), ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(b) after expiry = %v, %v; want true", ok, err)
	}
	// A's late release leaves b's lease alone; b's own release frees it.
	if err := s.ReleaseLease(ctx, name, "a", base.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.Get(ctx, name); rec.LeaseHolder != "b" {
		t.Fatalf("after a's release the holder is %q; want b", rec.LeaseHolder)
	}
	if err := s.ReleaseLease(ctx, name, "b", base.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.AcquireLease(ctx, name, "c", base.Add(6*time.Minute), ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(c) after b's release = %v, %v; want true", ok, err)
	}

	// Of many pollers racing for a free lease, one wins.
	raced := opName("raced")
	if _, err := s.Create(ctx, running(raced), base); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.AcquireLease(ctx, raced, string(rune('a'+i)), base, ttl)
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
	if won != 1 {
		t.Fatalf("%d of 6 racing pollers got the lease; want 1", won)
	}
}

func TestPending(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, id := range []string{"p1", "p2", "p3"} {
		if _, err := s.Create(ctx, running(opName(id)), base); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkReported(ctx, opName("p2"), base); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range recs {
		got[r.Name] = true
	}
	if len(recs) != 2 || !got[opName("p1")] || !got[opName("p3")] {
		t.Fatalf("Pending = %v; want p1 and p3", got)
	}
}

func TestRecordSuccessAndHealth(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ended := 0
	rec := func(name string, entities int64, kinds ...string) poller.Record {
		op := successful(opName(name))
		op.EntitiesCompleted, op.Kinds = entities, kinds
		ended++
		op.EndTime = base.Add(time.Duration(ended) * time.Hour)
		return poller.Record{Operation: op}
	}
	h, err := s.Health(ctx, "example-proj", base)
	if err != nil || !h.Since.Equal(us(base)) || h.LastSuccess.Name != "" {
		t.Fatalf("first Health = %+v, %v; want since %v and no success", h, err, base)
	}
	if _, ok, err := s.RecordSuccess(ctx, rec("s1", 1000, "User"), base.Add(time.Hour)); err != nil || ok {
		t.Fatalf("first RecordSuccess = %v, %v; want no previous success", ok, err)
	}
	prev, ok, err := s.RecordSuccess(ctx, rec("s2", 800, "User"), base.Add(2*time.Hour))
	if err != nil || !ok || prev.Name != opName("s1") || prev.Entities != 1000 {
		t.Fatalf("second RecordSuccess = %+v, %v, %v; want s1 with 1000", prev, ok, err)
	}
	// Recorded again (a retried report), s2 still compares with s1.
	ended--
	prev, ok, err = s.RecordSuccess(ctx, rec("s2", 800, "User"), base.Add(3*time.Hour))
	if err != nil || !ok || prev.Name != opName("s1") {
		t.Fatalf("repeated RecordSuccess = %+v, %v, %v; want s1 again", prev, ok, err)
	}
	// Another filter has its own history.
	if _, ok, err := s.RecordSuccess(ctx, rec("s3", 5, "Order"), base.Add(4*time.Hour)); err != nil || ok {
		t.Fatalf("RecordSuccess of another filter = %v, %v; want no previous success", ok, err)
	}
	h, err = s.Health(ctx, "example-proj", base.Add(5*time.Hour))
	if err != nil || h.LastSuccess.Name != opName("s3") || !h.Since.Equal(us(base)) {
		t.Fatalf("Health = %+v, %v; want the last success s3, since %v", h, err, base)
	}

	forTime := h.LastSuccess.At
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", forTime, base.Add(30*time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimStaleAlarm = %v, %v; want true", ok, err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", forTime, base.Add(31*time.Hour)); err != nil || ok {
		t.Fatalf("second ClaimStaleAlarm for the same success = %v, %v; want false", ok, err)
	}
	if err := s.ReleaseStaleAlarm(ctx, "example-proj", forTime); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", forTime, base.Add(32*time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimStaleAlarm after a release = %v, %v; want true", ok, err)
	}
}

func TestStarts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	cron := poller.StartRequest{Project: "example-proj", FilterKey: poller.FilterKey("example-proj", nil, nil),
		Trigger: poller.TriggerCron, CronWindow: time.Hour, PerMinute: 3}
	if dup, err := s.BeginStart(ctx, cron, base); err != nil || dup != "" {
		t.Fatalf("BeginStart = %q, %v; want a go", dup, err)
	}
	if _, err := s.BeginStart(ctx, cron, base.Add(time.Second)); !errors.Is(err, poller.ErrStartInProgress) {
		t.Fatalf("BeginStart during a start = %v; want ErrStartInProgress", err)
	}
	name := opName("cron-1")
	if _, err := s.Create(ctx, running(name), base); err != nil {
		t.Fatal(err)
	}
	if err := s.EndStart(ctx, cron, name, base.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	// App Engine retries the cron request: it duplicates cron-1.
	if dup, err := s.BeginStart(ctx, cron, base.Add(5*time.Minute)); err != nil || dup != name {
		t.Fatalf("repeated cron BeginStart = %q, %v; want %q", dup, err, name)
	}
	manual := cron
	manual.Trigger = poller.TriggerManual
	var running *poller.RunningError
	if _, err := s.BeginStart(ctx, manual, base.Add(5*time.Minute)); !errors.As(err, &running) || running.Name != name {
		t.Fatalf("manual BeginStart while cron-1 runs = %v; want a RunningError naming it", err)
	}
	manual.Force = true
	if dup, err := s.BeginStart(ctx, manual, base.Add(5*time.Minute)); err != nil || dup != "" {
		t.Fatalf("forced BeginStart = %q, %v; want a go", dup, err)
	}
	if err := s.EndStart(ctx, manual, "", base.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Past the window a cron start is a new one, even while cron-1 runs: a
	// daily export is never skipped silently.
	if dup, err := s.BeginStart(ctx, cron, base.Add(2*time.Hour)); err != nil || dup != "" {
		t.Fatalf("cron BeginStart past the window while cron-1 runs = %q, %v; want a go", dup, err)
	}
	if err := s.EndStart(ctx, cron, "", base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetOutcome(ctx, name, poller.OutcomeSuccess, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if dup, err := s.BeginStart(ctx, cron, base.Add(2*time.Hour)); err != nil || dup != "" {
		t.Fatalf("cron BeginStart after cron-1 ended = %q, %v; want a go", dup, err)
	}
	if err := s.EndStart(ctx, cron, "", base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Two cron starts in the minute of +2h above (PerMinute 3): one more of
	// another filter fills the minute, and the next is refused.
	other := poller.StartRequest{Project: "example-proj", FilterKey: poller.FilterKey("example-proj", []string{"Order"}, nil), Trigger: poller.TriggerManual, PerMinute: 3}
	for i := range 1 {
		if _, err := s.BeginStart(ctx, other, base.Add(2*time.Hour+time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("start %d in the minute = %v", i+2, err)
		}
		s.EndStart(ctx, other, "", base.Add(2*time.Hour))
	}
	if _, err := s.BeginStart(ctx, other, base.Add(2*time.Hour+10*time.Second)); !errors.Is(err, poller.ErrRateLimited) {
		t.Fatalf("fourth start in a minute = %v; want ErrRateLimited", err)
	}
	if _, err := s.BeginStart(ctx, other, base.Add(2*time.Hour+time.Minute)); err != nil {
		t.Fatalf("a start in the next minute = %v; want a go", err)
	}
}
