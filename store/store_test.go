package store_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/datastore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
	"github.com/dsexport/dsexport/store/storetest"
)

// The store must keep satisfying the poller's port.
var _ poller.Store = (*store.Store)(nil)

func TestMain(m *testing.M) {
	os.Exit(emulatortest.Main(m))
}

// emulators are the two the store must work on: the Datastore emulator
// locks optimistically (a conflicting commit fails at once), the Firestore
// emulator in Datastore mode pessimistically (a conflicting commit waits),
// as new Firestore in Datastore mode databases do.
var emulators = []struct {
	name string
	host func(testing.TB) string
}{
	{"datastore", emulatortest.Host},
	{"firestore", emulatortest.FirestoreHost},
}

// open returns a store on the emulator at host in a project of its own,
// closed when t ends.
func open(t *testing.T, host string) *store.Store {
	t.Helper()
	// Options rather than DATASTORE_EMULATOR_HOST, which t.Setenv would
	// have to set in every subtest.
	s, err := store.New(context.Background(), emulatortest.Project(t), clientOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContract runs the contract against both emulators, each subtest in a
// project of its own so that no other subtest's entities show in List or
// Pending.
func TestContract(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			host := emu.host(t)
			storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, host) })
		})
	}
}

// clientOptions reach the emulator at host without credentials.
func clientOptions(host string) []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(host), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
}

// TestCommitOutlivesDeadline holds a lock on an operation from another
// client, as another instance's transaction would, while AddSnapshot runs
// with a deadline that passes before the lock is freed. Under pessimistic
// locking the commit waits for the lock; a commit cut off by the deadline
// lands later anyway, after its call failed, and a retry would count the
// poll twice. The call must answer what happened: success and one poll, or
// failure and none, for good.
func TestCommitOutlivesDeadline(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			host := emu.host(t)
			project := emulatortest.Project(t)
			s, err := store.New(context.Background(), project, clientOptions(host)...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			other, err := datastore.NewClient(context.Background(), project, clientOptions(host)...)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			ctx := context.Background()
			name := "projects/example-proj/operations/locked"
			at := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
			if _, err := s.Create(ctx, poller.Operation{Name: name, Project: "example-proj"}, at); err != nil {
				t.Fatal(err)
			}
			tx, err := other.NewTransaction(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The kind is part of the stored data (store.operationKind).
			var props datastore.PropertyList
			if err := tx.Get(datastore.NameKey("DSExportOperation", name, nil), &props); err != nil {
				t.Fatal(err)
			}
			released := time.Now().Add(1500 * time.Millisecond)
			time.AfterFunc(time.Until(released), func() { tx.Rollback() })
			step, cancel := context.WithTimeout(ctx, time.Second)
			_, addErr := s.AddSnapshot(step, name, 1, poller.Operation{Name: name, Project: "example-proj"}, at)
			cancel()
			want := 1
			if addErr != nil {
				t.Logf("AddSnapshot: %v", addErr)
				want = 0
			}
			// A commit still under way lands as the lock is freed.
			time.Sleep(time.Until(released.Add(time.Second)))
			rec, err := s.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Polls; got != want {
				t.Fatalf("Polls = %d after AddSnapshot returned %v; want %d", got, addErr, want)
			}
		})
	}
}

// TestTwoProcesses runs polls of one operation from two stores on one
// project, as from two instances, each call with a poller's 5 s step
// deadline. Within a store the calls queue; between the stores they meet in
// Datastore, where on the Firestore emulator each meeting costs about 2 s
// (2-8 s for this test there). The stores record polls 1, 3, 5 and 2, 4, 6.
// Calls may fail, but none may count a poll it said it did not: the count
// is the highest poll number of the calls that succeeded.
func TestTwoProcesses(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			host := emu.host(t)
			project := emulatortest.Project(t)
			var stores []*store.Store
			for range 2 {
				s, err := store.New(context.Background(), project, clientOptions(host)...)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				stores = append(stores, s)
			}
			name := "projects/example-proj/operations/shared"
			at := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
			if _, err := stores[0].Create(context.Background(), poller.Operation{Name: name, Project: "example-proj"}, at); err != nil {
				t.Fatal(err)
			}
			const workers, calls = 1, 3
			var wg sync.WaitGroup
			var done, highest atomic.Int32
			start := time.Now()
			for si, s := range stores {
				for range workers {
					wg.Go(func() {
						for c := range calls {
							poll := 2*c + 1 + si
							step, cancel := context.WithTimeout(context.Background(), 5*time.Second)
							_, err := s.AddSnapshot(step, name, poll, poller.Operation{Name: name, Project: "example-proj"}, at)
							cancel()
							if err != nil {
								t.Logf("AddSnapshot: %v", err)
								continue
							}
							done.Add(1)
							for h := highest.Load(); int32(poll) > h && !highest.CompareAndSwap(h, int32(poll)); h = highest.Load() {
							}
						}
					})
				}
			}
			wg.Wait()
			t.Logf("%d of %d AddSnapshot calls from 2 stores done in %v", done.Load(), 2*workers*calls, time.Since(start).Round(time.Millisecond))
			rec, err := stores[0].Get(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := rec.Polls, int(highest.Load()); got != want {
				t.Fatalf("Polls = %d; want %d, the highest poll of the calls that succeeded", got, want)
			}
		})
	}
}

// TestHealthOfOlderRecords: a project's health record as versions before
// issue 10 wrote it (its last success inside it, written by every success;
// success entities without a project) still loads, and its last success
// counts, so that the staleness alarm neither breaks nor raises falsely
// after an upgrade.
func TestHealthOfOlderRecords(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			ctx := context.Background()
			project := emulatortest.Project(t)
			client, err := datastore.NewClient(ctx, project, clientOptions(emu.host(t))...)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			at := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
			last := &datastore.Entity{Properties: []datastore.Property{
				{Name: "name", Value: "projects/example-proj/operations/old", NoIndex: true},
				{Name: "entities", Value: int64(7), NoIndex: true},
				{Name: "at", Value: at, NoIndex: true},
			}}
			old := datastore.PropertyList{
				{Name: "since", Value: at.Add(-24 * time.Hour), NoIndex: true},
				{Name: "lastSuccess", Value: last, NoIndex: true},
				{Name: "alarmFor", Value: time.Time{}, NoIndex: true},
			}
			// The kind is part of the stored data (store.healthKind).
			if _, err := client.Put(ctx, datastore.NameKey("DSExportHealth", "example-proj", nil), &old); err != nil {
				t.Fatal(err)
			}
			s := store.NewFromClient(client)
			h, err := s.Health(ctx, "example-proj", at.Add(48*time.Hour))
			if err != nil {
				t.Fatalf("Health of an older record: %v", err)
			}
			if h.LastSuccess.Name != "projects/example-proj/operations/old" || !h.LastSuccess.At.Equal(at) {
				t.Fatalf("Health of an older record: last success %+v; want the one it holds", h.LastSuccess)
			}
			if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", "h", at, at.Add(48*time.Hour)); err != nil || !ok {
				t.Fatalf("ClaimStaleAlarm on an older record = %v, %v; want true", ok, err)
			}
		})
	}
}

// TestStoreInItsOwnDatabase proves the separation the store database gives:
// on the Firestore emulator in Datastore mode, which keeps databases apart as
// Google does, records written through a store in database "dsexport" are
// not in the project's (default) database — the one an export of the
// project would carry — and a store on (default) does not see them.
func TestStoreInItsOwnDatabase(t *testing.T) {
	host := emulatortest.FirestoreHost(t)
	ctx := context.Background()
	project := emulatortest.Project(t)
	own, err := store.NewIn(ctx, project, store.DefaultDatabase, clientOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	op := poller.Operation{Name: "projects/" + project + "/operations/ASA1", Project: project, State: poller.StateProcessing, Target: "shop"}
	if _, err := own.Create(ctx, op, at); err != nil {
		t.Fatal(err)
	}
	if rec, err := own.Get(ctx, op.Name); err != nil || rec.Target != "shop" {
		t.Fatalf("Get from the store's own database = %+v, %v; want the record with its target", rec, err)
	}

	client, err := datastore.NewClientWithDatabase(ctx, project, "", clientOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	keys, err := client.GetAll(ctx, datastore.NewQuery("DSExportOperation").KeysOnly(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		t.Errorf("(default) holds %s: dsexport's records leaked into the exported database", k)
	}
	def, err := store.NewIn(ctx, project, poller.DefaultDatabase, clientOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if _, err := def.Get(ctx, op.Name); !errors.Is(err, poller.ErrNotFound) {
		t.Errorf("a store on (default) Get = %v; want ErrNotFound: the databases are not kept apart", err)
	}
}
