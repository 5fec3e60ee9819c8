package faultrun

import (
	"os"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/internal/emulatortest"
)

// An emulator is a store target of the run: its name in subtest names and
// FAULTRUN_EMULATOR, and how to get the host:port of a running one.
type emulator struct {
	name string
	host func(t testing.TB) string
}

// emulators are the store targets, in the order they run.
var emulators = []emulator{
	// The Datastore emulator: optimistic locking (a conflicting commit
	// fails at once).
	{"datastore", emulatortest.Host},
	// The Firestore emulator in Datastore mode: pessimistic locking (a
	// conflicting commit waits), as new Firestore in Datastore mode
	// databases lock.
	{"firestore", emulatortest.FirestoreHost},
}

// selectedEmulators are the targets FAULTRUN_EMULATOR names (a
// comma-separated list; default both).
func selectedEmulators(t *testing.T) []emulator {
	want := os.Getenv("FAULTRUN_EMULATOR")
	if want == "" {
		return emulators
	}
	var out []emulator
	for _, name := range strings.Split(want, ",") {
		found := false
		for _, e := range emulators {
			if e.name == strings.TrimSpace(name) {
				out = append(out, e)
				found = true
			}
		}
		if !found {
			t.Fatalf("FAULTRUN_EMULATOR=%q: unknown emulator %q; want datastore and/or firestore", want, name)
		}
	}
	return out
}
