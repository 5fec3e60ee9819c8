package count

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"cloud.google.com/go/datastore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Main(m)) }

// emulators are the two a count must work on: the Datastore emulator
// answers no COUNT (the fallback counts keys), the Firestore emulator in
// Datastore mode does, and keeps named databases apart.
var emulators = []struct {
	name string
	host func(testing.TB) string
	// counts tells whether the emulator answers COUNT aggregations.
	counts bool
}{
	{"datastore", emulatortest.Host, false},
	{"firestore", emulatortest.FirestoreHost, true},
}

// newCounter returns a Counter on the emulator at host, closed when t ends.
func newCounter(t *testing.T, host string, opts ...Option) *Counter {
	t.Helper()
	c, err := New(context.Background(), append([]Option{WithEmulatorHost(host)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// put writes n entities of kind in namespace of database of project on the
// emulator at host, with a client of its own (not the Counter's).
func put(t *testing.T, host, project, database, namespace, kind string, n int) {
	t.Helper()
	ctx := context.Background()
	ds, err := datastore.NewClientWithDatabase(ctx, project, database, emulatorOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	type entity struct{ N int }
	for from := 0; from < n; from += ClearBatch {
		var keys []*datastore.Key
		var es []*entity
		for i := from; i < n && i < from+ClearBatch; i++ {
			k := datastore.NameKey(kind, fmt.Sprintf("e%06d", i), nil)
			k.Namespace = namespace
			keys = append(keys, k)
			es = append(es, &entity{N: i})
		}
		if _, err := ds.PutMulti(ctx, keys, es); err != nil {
			t.Fatalf("put %d of %s/%s: %v", len(keys), namespace, kind, err)
		}
	}
}

// wantCount fails t unless kind in namespace of database counts want.
func wantCount(t *testing.T, c *Counter, project, database, namespace, kind string, want int64) {
	t.Helper()
	got, err := c.Count(context.Background(), project, database, namespace, kind)
	if err != nil {
		t.Fatalf("Count(%q, %q, %q) error: %v", database, namespace, kind, err)
	}
	if got != want {
		t.Errorf("Count(%q, %q, %q) = %d; want %d", database, namespace, kind, got, want)
	}
}

// fellBack tells whether c counts database of project by its keys.
func fellBack(t *testing.T, c *Counter, project, database string) bool {
	t.Helper()
	cl, err := c.client(context.Background(), project, database)
	if err != nil {
		t.Fatal(err)
	}
	return cl.noCount.Load()
}

func TestCountPerKindAndNamespace(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			t.Parallel()
			host := emu.host(t)
			project := emulatortest.Project(t)
			put(t, host, project, "", "", "Book", 3)
			put(t, host, project, "", "shop", "Book", 2)
			put(t, host, project, "", "", "Author", 1)
			c := newCounter(t, host)
			for _, tt := range []struct {
				namespace, kind string
				want            int64
			}{
				{"", "Book", 3},
				{"shop", "Book", 2},
				{"", "Author", 1},
				{"shop", "Author", 0},
				{"", "Nothing", 0},
				{"elsewhere", "Book", 0},
			} {
				wantCount(t, c, project, "", tt.namespace, tt.kind, tt.want)
			}
			// The default database by either of its names is one client.
			wantCount(t, c, project, "(default)", "", "Book", 3)
			if got, want := len(c.clients), 1; got != want {
				t.Errorf("%d clients after counting in one database; want %d", got, want)
			}
			if got, want := fellBack(t, c, project, ""), !emu.counts; got != want {
				t.Errorf("fell back to keys = %v; want %v", got, want)
			}
		})
	}
}

// TestNamedDatabase counts a named database apart from the default one on
// the Firestore emulator, which keeps them apart (the Datastore emulator
// knows one database).
func TestNamedDatabase(t *testing.T) {
	t.Parallel()
	host := emulatortest.FirestoreHost(t)
	project := emulatortest.Project(t)
	put(t, host, project, "", "", "Book", 5)
	put(t, host, project, "scratch", "", "Book", 2)
	put(t, host, project, "scratch", "shop", "Book", 1)
	c := newCounter(t, host)
	wantCount(t, c, project, "", "", "Book", 5)
	wantCount(t, c, project, "scratch", "", "Book", 2)
	wantCount(t, c, project, "scratch", "shop", "Book", 1)
	wantCount(t, c, project, "other", "", "Book", 0)
	if got, want := len(c.clients), 3; got != want {
		t.Errorf("%d clients after counting in three databases; want %d", got, want)
	}
}

func TestClear(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			t.Parallel()
			host := emu.host(t)
			project := emulatortest.Project(t)
			// A drill clears a named scratch database; the Datastore
			// emulator has the default one only.
			db := ""
			if emu.name == "firestore" {
				db = "scratch"
				put(t, host, project, "", "drill", "Book", 4)
			}
			// More than two batches, the last one partial.
			const many = 2*ClearBatch + 200
			put(t, host, project, db, "drill", "Book", many)
			put(t, host, project, db, "", "Book", 3)
			put(t, host, project, db, "drill", "Author", 4)
			c := newCounter(t, host)
			ctx := context.Background()

			n, err := c.Clear(ctx, project, db, "drill", "Book")
			if err != nil {
				t.Fatalf("Clear: %v", err)
			}
			if n != many {
				t.Errorf("Clear deleted %d; want %d", n, many)
			}
			wantCount(t, c, project, db, "drill", "Book", 0)
			wantCount(t, c, project, db, "", "Book", 3)
			wantCount(t, c, project, db, "drill", "Author", 4)
			if db != "" {
				wantCount(t, c, project, "", "drill", "Book", 4)
			}

			n, err = c.Clear(ctx, project, db, "drill", "Book")
			if err != nil || n != 0 {
				t.Errorf("Clear again = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// TestFallbackBound counts more keys than the fallback reads: the Datastore
// emulator's count fails and says why, the Firestore emulator's COUNT is
// not bounded by it.
func TestFallbackBound(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			t.Parallel()
			host := emu.host(t)
			project := emulatortest.Project(t)
			put(t, host, project, "", "", "Book", 3)
			c := newCounter(t, host, WithMaxFallback(2))
			n, err := c.Count(context.Background(), project, "", "", "Book")
			if emu.counts {
				if err != nil || n != 3 {
					t.Fatalf("Count = %d, %v; want 3, nil", n, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "more than 2 entities") {
				t.Fatalf("Count = %d, %v; want an error saying more than 2 entities", n, err)
			}
			c2 := newCounter(t, host, WithMaxFallback(3))
			wantCount(t, c2, project, "", "", "Book", 3)
		})
	}
}

func TestReservedKind(t *testing.T) {
	t.Parallel()
	// No emulator: the kind is refused before any call.
	c, err := New(context.Background(), WithEmulatorHost("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, kind := range []string{"__kind__", "__Stat_Kind__", ""} {
		if n, err := c.Count(ctx, "proj-r", "db-r", "ns-r", kind); err == nil {
			t.Errorf("Count(%q) = %d; want an error", kind, n)
		} else {
			for _, want := range []string{"proj-r/databases/db-r", `namespace "ns-r"`, fmt.Sprintf("kind %q", kind)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Count(%q) error %q does not say %s", kind, err, want)
				}
			}
			if kind != "" && !strings.Contains(err.Error(), "reserved") {
				t.Errorf("Count(%q) error %q does not say the kind is reserved", kind, err)
			}
		}
		if n, err := c.Clear(ctx, "proj-r", "", "", kind); err == nil || n != 0 {
			t.Errorf("Clear(%q) = %d, %v; want 0 and an error", kind, n, err)
		}
	}
	// A kind of any size is quoted in part: the message stays bounded.
	long := "__" + strings.Repeat("x", 5000)
	if _, err := c.Count(ctx, "proj-r", "", "", long); err == nil {
		t.Errorf("Count(a long reserved kind) succeeded")
	} else if len(err.Error()) > poller.MaxErrorText || !strings.Contains(err.Error(), "bytes in all]") {
		t.Errorf("Count(a long reserved kind) error of %d bytes, not said cut: %.300q", len(err.Error()), err)
	}
	if got := len(c.clients); got != 0 {
		t.Errorf("%d clients made for refused kinds; want 0", got)
	}
}

func TestCanceled(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			t.Parallel()
			host := emu.host(t)
			project := emulatortest.Project(t)
			put(t, host, project, "", "", "Book", 2)
			c := newCounter(t, host)
			canceled, cancel := context.WithCancel(context.Background())
			cancel()
			isCanceled := func(err error) bool {
				return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
			}
			// Before the client is made, and after.
			if n, err := c.Count(canceled, project, "", "", "Book"); !isCanceled(err) {
				t.Errorf("Count before a client = %d, %v; want the cancel", n, err)
			}
			wantCount(t, c, project, "", "", "Book", 2)
			if n, err := c.Count(canceled, project, "", "", "Book"); !isCanceled(err) {
				t.Errorf("Count = %d, %v; want the cancel", n, err)
			}
			if n, err := c.Clear(canceled, project, "", "", "Book"); !isCanceled(err) || n != 0 {
				t.Errorf("Clear = %d, %v; want 0 and the cancel", n, err)
			}
			wantCount(t, c, project, "", "", "Book", 2)
		})
	}
}

// TestEmulatorHostOverridesEnv counts on the Datastore emulator while
// DATASTORE_EMULATOR_HOST names the Firestore emulator, and while it is
// unset (then the client's own options ask for credentials and TLS).
func TestEmulatorHostOverridesEnv(t *testing.T) {
	host := emulatortest.Host(t)
	other := emulatortest.FirestoreHost(t)
	project := emulatortest.Project(t)
	put(t, host, project, "", "", "Book", 3)
	for _, env := range []string{other, ""} {
		t.Run(fmt.Sprintf("env=%q", env), func(t *testing.T) {
			t.Setenv("DATASTORE_EMULATOR_HOST", env)
			c := newCounter(t, host)
			wantCount(t, c, project, "", "", "Book", 3)
			if !fellBack(t, c, project, "") {
				t.Errorf("counted with COUNT: not on the Datastore emulator")
			}
		})
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	host := emulatortest.FirestoreHost(t)
	project := emulatortest.Project(t)
	c, err := New(context.Background(), WithEmulatorHost(host))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Count(context.Background(), project, "", "", "Book"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n, err := c.Count(context.Background(), project, "", "", "Book"); err == nil {
		t.Errorf("Count after Close = %d; want an error", n)
	}
}

// TestKinds: the kinds of a database in every namespace, Datastore's own
// left out, on both emulators; an empty database has none.
func TestKinds(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			host := emu.host(t)
			project := emulatortest.Project(t)
			c := newCounter(t, host)
			if emu.name == "firestore" {
				// The Firestore emulator refuses metadata queries (Google
				// answers them): the refusal comes back whole.
				_, err := c.Kinds(ctx, project, "")
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "list kinds") {
					t.Fatalf("Kinds on the Firestore emulator = %v; want its InvalidArgument, named", err)
				}
				return
			}
			if got, err := c.Kinds(ctx, project, ""); err != nil || len(got) != 0 {
				t.Fatalf("Kinds of an empty database = %v, %v; want none", got, err)
			}
			put(t, host, project, "", "", "Order", 2)
			put(t, host, project, "", "eu", "User", 1)
			got, err := c.Kinds(ctx, project, "")
			if err != nil {
				t.Fatal(err)
			}
			want := map[poller.KindCount]bool{{Kind: "Order"}: true, {Namespace: "eu", Kind: "User"}: true}
			if len(got) != len(want) {
				t.Fatalf("Kinds = %v; want %v", got, want)
			}
			for _, k := range got {
				if !want[k] {
					t.Errorf("Kinds has %v; want %v", k, want)
				}
			}
		})
	}
}
