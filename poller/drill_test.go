package poller_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
)

// scratchData is the drill's scratch database as the Counter port sees
// it: what is in it per "project/database/namespace/kind" (set by each
// test to what the import would have written), what Clear removed, and
// errors to answer.
type scratchData struct {
	mu      sync.Mutex
	counts  map[string]int64
	cleared []string
	err     error
	// errs answers the next calls with these errors first.
	errs []error
	// onCount, when set, is called after each Count; calls counts them.
	onCount func()
	calls   int
	// stubborn is a key whose Clear says it deleted but leaves it.
	stubborn string
}

func (s *scratchData) key(project, database, namespace, kind string) string {
	return strings.Join([]string{project, database, namespace, kind}, "/")
}

func (s *scratchData) Count(_ context.Context, project, database, namespace, kind string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return 0, err
	}
	if s.err != nil {
		return 0, s.err
	}
	s.calls++
	if s.onCount != nil {
		s.onCount()
	}
	return s.counts[s.key(project, database, namespace, kind)], nil
}

func (s *scratchData) Kinds(_ context.Context, project, database string) ([]poller.KindCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []poller.KindCount
	for k, n := range s.counts {
		parts := strings.SplitN(k, "/", 4)
		if n > 0 && parts[0] == project && parts[1] == database {
			out = append(out, poller.KindCount{Namespace: parts[2], Kind: parts[3], Entities: n})
		}
	}
	return out, nil
}

func (s *scratchData) Clear(_ context.Context, project, database, namespace, kind string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.key(project, database, namespace, kind)
	n := s.counts[k]
	if k != s.stubborn {
		delete(s.counts, k)
	}
	s.cleared = append(s.cleared, k)
	return n, nil
}

// drillRig is a poller whose drills go through the Firestore Admin API's
// fake over HTTP and the in-memory store, with the real clock: the fake's
// imports take their time from it.
type drillRig struct {
	*testrig.Rig
	fs      *firestorefake.Server
	router  admin.Router
	scratch *scratchData
	target  poller.Target
}

const drillExport = "gs://shop-backups/daily/2026-12-01T03:00:00_1/2026-12-01T03:00:00_1.overall_export_metadata"

func newDrillRig(t *testing.T, spec poller.DrillSpec, configure ...func(*poller.Config)) *drillRig {
	t.Helper()
	fs := firestorefake.New(t)
	fsa, err := admin.NewFirestore(context.Background(), fs.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	scratch := &scratchData{counts: map[string]int64{}}
	r := &drillRig{fs: fs, scratch: scratch, router: admin.Router{Firestore: fsa}}
	r.Rig = testrig.New(t, 5, append([]func(*poller.Config){func(c *poller.Config) {
		c.Clock = poller.SystemClock{}
		c.Drills = r.router
		c.DrillCounter = scratch
	}}, configure...)...)
	fs.AddDatabase("shop-prod", poller.DefaultDatabase)
	r.target = poller.Target{Name: "shop", Project: "shop-prod", Database: poller.DefaultDatabase,
		Export: &poller.ExportRequest{Project: "shop-prod", OutputURLPrefix: "gs://shop-backups/daily"}, Drill: &spec}
	return r
}

// verified records a verified export of the target holding Order 3 and
// Line 2, made an hour ago.
func (r *drillRig) verified(t *testing.T) {
	t.Helper()
	v := poller.Verification{
		Operation: "projects/shop-prod/operations/ASA1", Target: r.target.Name, Project: "shop-prod", Database: poller.DefaultDatabase,
		OutputURL: drillExport, At: time.Now(), ExportTime: time.Now().Add(-time.Hour),
		Content: poller.Content{MetadataURL: drillExport, Files: 2, Bytes: 2048, Entities: 5,
			Kinds: []poller.KindCount{{Kind: "Line", Entities: 2}, {Kind: "Order", Entities: 3}}},
	}
	if err := r.Store.(poller.VerificationStore).RecordVerification(context.Background(), v, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// restored makes the scratch database hold what a good import writes.
func (r *drillRig) restored(d poller.Drill, order, line int64) {
	r.scratch.mu.Lock()
	defer r.scratch.mu.Unlock()
	r.scratch.counts[r.scratch.key(d.ScratchProject, d.ScratchDatabase, "", "Order")] = order
	r.scratch.counts[r.scratch.key(d.ScratchProject, d.ScratchDatabase, "", "Line")] = line
}

func (r *drillRig) begin(t *testing.T) poller.Drill {
	t.Helper()
	d, begun, err := r.Poller.BeginDrill(context.Background(), r.target, poller.TriggerManual, true)
	if err != nil || !begun {
		t.Fatalf("BeginDrill = %+v, %v, %v; want begun", d, begun, err)
	}
	return d
}

// advance advances the drill until it ends, at most n times.
func (r *drillRig) advance(t *testing.T, id string, n int) poller.Drill {
	t.Helper()
	var d poller.Drill
	for range n {
		var err error
		if d, err = r.Poller.AdvanceDrill(context.Background(), id); err != nil {
			t.Fatalf("AdvanceDrill: %v", err)
		}
		if d.Finished() {
			return d
		}
	}
	return d
}

// TestDrillPasses: a drill creates a scratch database in Datastore mode,
// imports the latest verified export's folder into it, counts each kind,
// matches them, deletes the database and reports the restore time.
func TestDrillPasses(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: 7 * 24 * time.Hour})
	r.verified(t)
	d := r.begin(t)
	if !d.CreateScratch || !strings.HasPrefix(d.ScratchDatabase, "dsx-drill-") || d.ScratchProject != "shop-prod" {
		t.Fatalf("drill scratch %s/%s create %v; want a dsx-drill- database of its own in shop-prod", d.ScratchProject, d.ScratchDatabase, d.CreateScratch)
	}
	r.restored(d, 3, 2)
	d = r.advance(t, d.ID, 3)
	if !d.Finished() || d.Outcome != poller.DrillPassed || !d.Deleted {
		t.Fatalf("drill = step %s outcome %q deleted %v error %q; want passed, deleted, reported", d.Step, d.Outcome, d.Deleted, d.Error)
	}
	creates := r.fs.Creates()
	if len(creates) != 1 || creates[0].Type != "DATASTORE_MODE" || creates[0].DatabaseID != d.ScratchDatabase {
		t.Errorf("creates = %+v; want one DATASTORE_MODE database %s", creates, d.ScratchDatabase)
	}
	imports := r.fs.Imports()
	if len(imports) != 1 || imports[0].Database != d.ScratchDatabase || imports[0].InputURIPrefix != strings.TrimSuffix(drillExport, "/2026-12-01T03:00:00_1.overall_export_metadata") {
		t.Errorf("imports = %+v; want one of the export's folder into %s", imports, d.ScratchDatabase)
	}
	if n := r.fs.Calls(firestorefake.DeleteDatabase); n != 1 {
		t.Errorf("databases.delete calls = %d; want 1", n)
	}
	if d.RTO() < time.Second || d.RPO() < 59*time.Minute {
		t.Errorf("RTO %s, RPO %s; want the import's 1.5s and the export's hour", d.RTO(), d.RPO())
	}
	got := text(r.Slack.Only(t))
	for _, want := range []string{"shop: Restore verified in ", ": 5 entities in 2 kinds", "Restore time (RTO)", "Restored point age (RPO)", "5 of 5"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if again := r.advance(t, d.ID, 1); !again.Finished() || len(r.Slack.Messages()) != 1 {
		t.Errorf("a finished drill advanced again: step %s, %d messages", again.Step, len(r.Slack.Messages()))
	}
}

// TestDrillFails: each step that fails is named in the report, and the
// scratch database is deleted whenever it was asked for.
func TestDrillFails(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(r *drillRig)
		order   int64
		step    poller.DrillStep
		want    []string
		deletes int
	}{
		{name: "creation refused", setup: func(r *drillRig) {
			r.fs.ScriptCreates(firestorefake.Failed(7, "The caller does not have permission datastore.databases.create"))
		}, order: 3, step: poller.DrillCreate, deletes: 1,
			want: []string{"Restore drill failed at step create", "datastore.databases.create"}},
		{name: "import failed", setup: func(r *drillRig) {
			r.fs.ScriptImports(firestorefake.Failed(9, "The export metadata file is corrupt"))
		}, order: 3, step: poller.DrillImport, deletes: 1,
			want: []string{"Restore drill failed at step import", "The export metadata file is corrupt", "gcloud firestore operations describe"}},
		{name: "a kind restored short", order: 2, step: poller.DrillCompare, deletes: 1,
			want: []string{"Restore drill failed at step compare", `Kind \"Order\": the export's files hold 3 entities; 2 were restored.`}},
		{name: "count refused", setup: func(r *drillRig) {
			r.scratch.err = errors.New("rpc error: code = PermissionDenied desc = Missing datastore.entities.list")
		}, order: 3, step: poller.DrillCount, deletes: 1,
			want: []string{"Restore drill failed at step count", "Missing datastore.entities.list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newDrillRig(t, poller.DrillSpec{Every: 24 * time.Hour})
			r.verified(t)
			if tt.setup != nil {
				tt.setup(r)
			}
			d := r.begin(t)
			r.restored(d, tt.order, 2)
			d = r.advance(t, d.ID, 5)
			if !d.Finished() || d.Outcome != poller.DrillFailed || d.FailedStep != tt.step {
				t.Fatalf("drill = step %s outcome %q failed at %q (%s); want failed at %s and reported", d.Step, d.Outcome, d.FailedStep, d.Error, tt.step)
			}
			if n := r.fs.Calls(firestorefake.DeleteDatabase); n != tt.deletes {
				t.Errorf("databases.delete calls = %d; want %d", n, tt.deletes)
			}
			got := text(r.Slack.Only(t))
			for _, want := range tt.want {
				if !strings.Contains(got, want) {
					t.Errorf("report lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

// TestDrillNeedsAVerifiedExport: without a verified export there is
// nothing to restore, and no drill is recorded.
func TestDrillNeedsAVerifiedExport(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: 24 * time.Hour})
	_, begun, err := r.Poller.BeginDrill(context.Background(), r.target, poller.TriggerManual, true)
	if !errors.Is(err, poller.ErrNoVerifiedExport) || begun {
		t.Fatalf("BeginDrill = %v, %v; want ErrNoVerifiedExport", begun, err)
	}
	if _, ok, _ := r.Store.(poller.DrillStore).LatestDrill(context.Background(), "shop"); ok {
		t.Error("a drill was recorded")
	}
}

// TestDrillSurvivesRestart: an import under way is followed by the next
// advance, of another poller on the same store, without a second import,
// and the drill is reported once.
func TestDrillSurvivesRestart(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: 24 * time.Hour})
	r.verified(t)
	running := firestorefake.Running("PROCESSING", 10, 100, 1000, 10000)
	r.fs.ScriptImports(running, running, firestorefake.Successful(5, 2048))
	d := r.begin(t)
	r.restored(d, 3, 2)
	d = r.advance(t, d.ID, 1)
	if d.Step != poller.DrillImport || d.ImportOp == "" {
		t.Fatalf("after one advance: step %s import %q; want the import under way", d.Step, d.ImportOp)
	}
	// A new process: another poller on the same store and peers.
	other := poller.New(poller.Config{Store: r.Store, Notifier: r.Notifier, Logger: r.Logger,
		Drills: r.router, DrillCounter: r.scratch, Interval: time.Minute, MaxPolls: 5})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				got, err := other.AdvanceDrill(context.Background(), d.ID)
				if err != nil {
					t.Errorf("AdvanceDrill: %v", err)
					return
				}
				if got.Finished() {
					return
				}
			}
		}()
	}
	wg.Wait()
	final, err := r.Store.(poller.DrillStore).Drill(context.Background(), d.ID)
	if err != nil || !final.Finished() || final.Outcome != poller.DrillPassed {
		t.Fatalf("drill = %+v, %v; want passed", final, err)
	}
	if n := len(r.fs.Imports()); n != 1 {
		t.Errorf("imports = %d; want 1", n)
	}
	if n := len(r.Slack.Messages()); n != 1 {
		t.Errorf("reports = %d; want 1", n)
	}
}

// TestDrillDue: the sweep begins a drill once per Every, and follows it.
func TestDrillDue(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour})
	ctx := context.Background()
	res, err := r.Poller.Sweep(ctx, []poller.Target{r.target})
	if err != nil || res.DrillsBegun != 0 {
		t.Fatalf("sweep without a verified export: %+v, %v; want no drill", res, err)
	}
	r.verified(t)
	for i := range 2 {
		res, err := r.Poller.Sweep(ctx, []poller.Target{r.target})
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 - i; res.DrillsBegun != want || res.DrillsEnded != want {
			t.Errorf("sweep %d: %d begun, %d ended; want %d and %d (one drill per hour)", i, res.DrillsBegun, res.DrillsEnded, want, want)
		}
	}
	if n := len(r.fs.Creates()); n != 1 {
		t.Errorf("scratch databases created = %d; want 1", n)
	}
}

// TestDrillIntoExistingDatabase: a drill into a scratch database the
// target names needs it empty of the kinds, and empties it after.
func TestDrillIntoExistingDatabase(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour, Project: "scratch-proj", Database: "drills"})
	r.fs.AddDatabase("scratch-proj", "drills")
	r.verified(t)
	d := r.begin(t)
	if d.CreateScratch || d.ScratchProject != "scratch-proj" || d.ScratchDatabase != "drills" {
		t.Fatalf("scratch %s/%s create %v; want scratch-proj/drills as it is", d.ScratchProject, d.ScratchDatabase, d.CreateScratch)
	}
	// The first drill finds Orders left over.
	r.restored(d, 1, 0)
	d = r.advance(t, d.ID, 3)
	if d.Outcome != poller.DrillFailed || d.FailedStep != poller.DrillCreate || !strings.Contains(d.Error, `holds entities already ("Order")`) {
		t.Fatalf("drill into a database with entities: %s at %s: %q; want failed at create", d.Outcome, d.FailedStep, d.Error)
	}
	if len(r.fs.Imports()) != 0 || len(r.scratch.cleared) != 0 {
		t.Errorf("imports %d, cleared %v; want nothing imported or cleared", len(r.fs.Imports()), r.scratch.cleared)
	}
	r.scratch.counts = map[string]int64{}
	r.fs.ScriptImports(firestorefake.Running("PROCESSING", 1, 5, 1, 100), firestorefake.Successful(5, 2048))
	d = r.begin(t)
	if d = r.advance(t, d.ID, 1); d.Step != poller.DrillImport {
		t.Fatalf("after one advance: step %s (%s); want the import under way", d.Step, d.Error)
	}
	r.restored(d, 3, 2)
	d = r.advance(t, d.ID, 3)
	if d.Outcome != poller.DrillPassed || len(r.scratch.cleared) != 2 || r.fs.Calls(firestorefake.DeleteDatabase) != 0 {
		t.Errorf("drill %s (%s), cleared %v, deletes %d; want passed, both kinds cleared, the database kept",
			d.Outcome, d.Error, r.scratch.cleared, r.fs.Calls(firestorefake.DeleteDatabase))
	}
}

// TestDrillCountResumes: a count stopped between kinds (a stop, the
// sweep's budget) goes on at the next advance from the kind it stopped
// at: each kind is counted once, and the drill passes.
func TestDrillCountResumes(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour})
	r.verified(t)
	d := r.begin(t)
	r.restored(d, 3, 2)
	ctx, cancel := context.WithCancel(context.Background())
	r.scratch.onCount = cancel
	got, err := r.Poller.AdvanceDrill(ctx, d.ID)
	if got.Step != poller.DrillCount || len(got.Counted) != 1 {
		t.Fatalf("advance stopped after a kind: step %s, %d counted, %v; want the count under way with one kind", got.Step, len(got.Counted), err)
	}
	r.scratch.onCount = nil
	got = r.advance(t, d.ID, 2)
	if got.Outcome != poller.DrillPassed || r.scratch.calls != 2 {
		t.Errorf("drill %s (%s) after %d counts; want passed after 2", got.Outcome, got.Error, r.scratch.calls)
	}
}

// lossyDrills is the drill store losing the first save that matches: the
// write a store outage or a late answer loses after the call it records.
type lossyDrills struct {
	poller.DrillStore
	mu    sync.Mutex
	match func(poller.Drill) bool
	lost  bool
}

func (l *lossyDrills) SaveDrill(ctx context.Context, d poller.Drill, holder string, at time.Time) error {
	l.mu.Lock()
	lose := !l.lost && l.match(d)
	l.lost = l.lost || lose
	l.mu.Unlock()
	if lose {
		return errors.New("injected: the store did not answer")
	}
	return l.DrillStore.SaveDrill(ctx, d, holder, at)
}

// advanceAll advances the drill until it ends, waiting out the lease a
// failed save leaves behind (a test's short one).
func (r *drillRig) advanceAll(t *testing.T, p *poller.Poller, id string) poller.Drill {
	t.Helper()
	var d poller.Drill
	deadline := time.Now().Add(5 * time.Second)
	for !d.Finished() {
		if time.Now().After(deadline) {
			t.Fatalf("the drill did not end: step %s (%s)", d.Step, d.Error)
		}
		d, _ = p.AdvanceDrill(context.Background(), id)
		if d.ID == "" {
			d, _ = r.Store.(poller.DrillStore).Drill(context.Background(), id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

// TestDrillImportAskedOnce: an import whose operation's name was not
// recorded (the store lost the write after the call) is never asked for
// again; the drill fails at import saying it may be running, and its
// scratch database is deleted.
func TestDrillImportAskedOnce(t *testing.T) {
	var lossy *lossyDrills
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour}, func(c *poller.Config) {
		c.StorePatience = time.Millisecond
		lossy = &lossyDrills{DrillStore: c.Store.(poller.DrillStore), match: func(d poller.Drill) bool { return d.ImportOp != "" }}
		c.DrillStore = lossy
	})
	r.verified(t)
	d := r.begin(t)
	r.restored(d, 3, 2)
	if _, err := r.Poller.AdvanceDrill(context.Background(), d.ID); err == nil {
		t.Fatal("AdvanceDrill with the import's save lost: no error")
	}
	// The lease the failed save kept runs out (DrillLease); a later advance
	// of another process takes the drill then.
	_, free, err := r.Store.(poller.DrillStore).AcquireDrill(context.Background(), d.ID, "later", time.Now().Add(poller.DrillLease+time.Second), time.Minute)
	if err != nil || !free {
		t.Fatalf("the lease after a lost save: %v, %v; want it free once expired", free, err)
	}
	if err := r.Store.(poller.DrillStore).ReleaseDrill(context.Background(), d.ID, "later"); err != nil {
		t.Fatal(err)
	}
	final := r.advanceAll(t, r.Poller, d.ID)
	if n := len(r.fs.Imports()); n != 1 {
		t.Errorf("imports = %d; want 1", n)
	}
	if final.Outcome != poller.DrillFailed || final.FailedStep != poller.DrillImport || !strings.Contains(final.Error, "may be running, and is not asked for again") {
		t.Errorf("drill %s at %s: %q; want failed at import, saying the import may be running", final.Outcome, final.FailedStep, final.Error)
	}
	if n := r.fs.Calls(firestorefake.DeleteDatabase); n != 1 {
		t.Errorf("databases.delete calls = %d; want the scratch database deleted", n)
	}
}

// TestDrillCreationAnswerLost: a creation whose answer was lost is asked
// for again; ALREADY_EXISTS is the drill's own database, the drill goes on
// and passes, and the database is deleted.
func TestDrillCreationAnswerLost(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour}, func(c *poller.Config) {
		c.StorePatience = time.Millisecond
		c.DrillStore = &lossyDrills{DrillStore: c.Store.(poller.DrillStore), match: func(d poller.Drill) bool { return d.CreateOp != "" }}
	})
	r.verified(t)
	d := r.begin(t)
	r.restored(d, 3, 2)
	if _, err := r.Poller.AdvanceDrill(context.Background(), d.ID); err == nil {
		t.Fatal("AdvanceDrill with the creation's save lost: no error")
	}
	if _, free, err := r.Store.(poller.DrillStore).AcquireDrill(context.Background(), d.ID, "later", time.Now().Add(poller.DrillLease+time.Second), time.Minute); err != nil || !free {
		t.Fatalf("the lease after a lost save: %v, %v; want it free once expired", free, err)
	}
	if err := r.Store.(poller.DrillStore).ReleaseDrill(context.Background(), d.ID, "later"); err != nil {
		t.Fatal(err)
	}
	final := r.advanceAll(t, r.Poller, d.ID)
	if final.Outcome != poller.DrillPassed || len(r.fs.Creates()) != 2 || r.fs.Calls(firestorefake.DeleteDatabase) != 1 {
		t.Errorf("drill %s (%s), %d creates, %d deletes; want passed after a second ask, and deleted",
			final.Outcome, final.Error, len(r.fs.Creates()), r.fs.Calls(firestorefake.DeleteDatabase))
	}
}

// TestDrillCreationUnavailable: a creation answered 503 is asked for again
// at the next advance, and the drill passes.
func TestDrillCreationUnavailable(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour})
	r.fs.Override(firestorefake.CreateDatabase, 1, firestorefake.Answer{Status: 503, Message: "The service is currently unavailable."})
	r.verified(t)
	d := r.begin(t)
	r.restored(d, 3, 2)
	final := r.advanceAll(t, r.Poller, d.ID)
	if final.Outcome != poller.DrillPassed || r.fs.Calls(firestorefake.CreateDatabase) != 2 {
		t.Errorf("drill %s (%s) after %d creates; want passed after two", final.Outcome, final.Error, r.fs.Calls(firestorefake.CreateDatabase))
	}
}

// TestDrillTimedOutImportNotCleared: an import past the drill's timeout
// into an existing scratch database may still be writing: the database is
// not emptied, and the report says to cancel the import first.
func TestDrillTimedOutImportNotCleared(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour, Project: "scratch-proj", Database: "drills", Timeout: time.Millisecond})
	r.fs.AddDatabase("scratch-proj", "drills")
	r.fs.ScriptImports(firestorefake.Running("PROCESSING", 1, 5, 1, 100))
	r.verified(t)
	d := r.begin(t)
	d = r.advance(t, d.ID, 1)
	time.Sleep(5 * time.Millisecond)
	final := r.advanceAll(t, r.Poller, d.ID)
	if final.FailedStep != poller.DrillImport || len(r.scratch.cleared) != 0 || !strings.Contains(final.DeleteError, "the import may still be running (cancel it: gcloud firestore operations cancel ") {
		t.Errorf("drill failed at %s, cleared %v, delete error %q; want failed at import, nothing cleared, the cancel command", final.FailedStep, r.scratch.cleared, final.DeleteError)
	}
}

// TestDrillClearThatDoesNotTake: a kind whose deletes do not take (the
// Datastore emulator keeps another database's imported keys) ends the
// emptying with the kind named, not a loop; the drill still passes.
func TestDrillClearThatDoesNotTake(t *testing.T) {
	r := newDrillRig(t, poller.DrillSpec{Every: time.Hour, Project: "scratch-proj", Database: "drills"})
	r.fs.AddDatabase("scratch-proj", "drills")
	r.fs.ScriptImports(firestorefake.Running("PROCESSING", 1, 5, 1, 100), firestorefake.Successful(5, 2048))
	r.verified(t)
	d := r.begin(t)
	d = r.advance(t, d.ID, 1)
	r.restored(d, 3, 2)
	r.scratch.stubborn = r.scratch.key("scratch-proj", "drills", "", "Line")
	final := r.advance(t, d.ID, 3)
	if final.Outcome != poller.DrillPassed || !strings.Contains(final.DeleteError, `still lists "Line", which a clear found nothing of`) {
		t.Errorf("drill %s, delete error %q; want passed, naming the kind left", final.Outcome, final.DeleteError)
	}
}
