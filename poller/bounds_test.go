package poller_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dsexport/dsexport/poller"
)

func TestBoundText(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"", 10, ""},
		{"short", 5, "short"},
		{strings.Repeat("a", 100), 40, strings.Repeat("a", 12) + " … [cut: 100 bytes in all]"},
		// "é" is two bytes: the cut never splits it.
		{strings.Repeat("é", 50), 40, strings.Repeat("é", 6) + " … [cut: 100 bytes in all]"},
		// A bound smaller than the note cuts the note.
		{strings.Repeat("a", 100), 5, " … "},
		{strings.Repeat("a", 100), 0, ""},
	}
	for _, tt := range tests {
		got := poller.BoundText(tt.s, tt.max)
		if got != tt.want {
			t.Errorf("BoundText(%.20q…, %d) = %q; want %q", tt.s, tt.max, got, tt.want)
		}
		if len(got) > tt.max {
			t.Errorf("BoundText(%.20q…, %d) has %d bytes", tt.s, tt.max, len(got))
		}
	}
}

func TestBoundTextKeepsUTF8(t *testing.T) {
	s := strings.Repeat("a€😀", 2000) // 1-, 3- and 4-byte sequences
	for max := 30; max < 60; max++ {
		got := poller.BoundText(s, max)
		if len(got) > max || !utf8.ValidString(got) || !strings.HasSuffix(got, "[cut: 16000 bytes in all]") {
			t.Fatalf("BoundText(…, %d) = %q (%d bytes); want valid UTF-8 within %d bytes, saying the cut", max, got, len(got), max)
		}
	}
}

func TestCutText(t *testing.T) {
	if got, want := poller.CutText("body", 100, " [cut]"), "body [cut]"; got != want {
		t.Errorf("CutText = %q; want %q", got, want)
	}
	if got, want := poller.CutText(strings.Repeat("x", 100), 10, " [cut]"), "xxxx [cut]"; got != want {
		t.Errorf("CutText = %q; want %q", got, want)
	}
}

func TestBounded(t *testing.T) {
	huge := strings.Repeat("x", 20<<20)
	manyKinds := make([]string, 250)
	for i := range manyKinds {
		manyKinds[i] = fmt.Sprintf("K%d", i)
	}
	op := poller.Operation{
		Name: "projects/p1/operations/x", Project: "p1", Done: true, State: poller.State(huge), Trigger: poller.Trigger(huge),
		Kinds: manyKinds, Namespaces: []string{"", huge}, OutputURLPrefix: "gs://b/" + huge, OutputURL: "gs://b/" + huge,
		ErrorCode: 13, ErrorMessage: huge,
	}
	got := op.Bounded()
	for _, f := range []struct {
		field string
		value string
		max   int
	}{
		{"State", string(got.State), poller.MaxLabel},
		{"Trigger", string(got.Trigger), poller.MaxLabel},
		{"OutputURLPrefix", got.OutputURLPrefix, poller.MaxURL},
		{"OutputURL", got.OutputURL, poller.MaxURL},
		{"ErrorMessage", got.ErrorMessage, poller.MaxErrorText},
		{"Namespaces[1]", got.Namespaces[1], poller.MaxNamespace},
	} {
		if len(f.value) > f.max {
			t.Errorf("Bounded().%s has %d bytes; want at most %d", f.field, len(f.value), f.max)
		}
		if !strings.Contains(f.value, "[cut") {
			t.Errorf("Bounded().%s = %.80q…; want it to say it was cut", f.field, f.value)
		}
	}
	if got, want := got.ErrorMessage, strings.Repeat("x", poller.MaxErrorText-len(" … [cut: 20971520 bytes in all]"))+" … [cut: 20971520 bytes in all]"; got != want {
		t.Errorf("Bounded().ErrorMessage ends %q; want %q", got[len(got)-40:], want[len(want)-40:])
	}
	if n := len(got.Kinds); n != poller.MaxListItems {
		t.Errorf("Bounded() kept %d kinds; want %d", n, poller.MaxListItems)
	}
	if got, want := got.Kinds[len(got.Kinds)-1], "… [cut: 250 kinds in all]"; got != want {
		t.Errorf("Bounded() last kind = %q; want %q", got, want)
	}
	if got, want := got.Kinds[:3], []string{"K0", "K1", "K2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Bounded() kinds start %q; want %q", got, want)
	}
	if got.Name != op.Name || got.Project != op.Project || got.ErrorCode != 13 || !got.Done || got.Namespaces[0] != "" {
		t.Errorf("Bounded() changed what was within bounds: %+v", got)
	}
	if op.Kinds[99] != "K99" {
		t.Errorf("Bounded() changed the operation it was called on")
	}
}

func TestBoundedKeepsWhatIsWithinBounds(t *testing.T) {
	op := poller.Operation{
		Name: "projects/example-proj/operations/ASA1", Project: "example-proj", State: poller.StateFailed,
		Trigger: poller.TriggerCron, Kinds: []string{"User", strings.Repeat("k", poller.MaxKind)}, Namespaces: []string{""},
		OutputURLPrefix: "gs://b/daily", OutputURL: "gs://b/" + strings.Repeat("o", poller.MaxObjectName),
		ErrorCode: 7, ErrorMessage: strings.Repeat("m", poller.MaxErrorText),
	}
	if got := op.Bounded(); !reflect.DeepEqual(got, op) {
		t.Errorf("Bounded() =\n%+v\nwant it unchanged", got)
	}
}

func TestCheckAnswer(t *testing.T) {
	const asked = "projects/example-proj/operations/ASA1"
	tests := []struct {
		name    string
		op      poller.Operation
		foreign bool
	}{
		{"same name", poller.Operation{Name: asked, Project: "example-proj"}, false},
		{"bare id of the same", poller.Operation{Name: "ASA1"}, false},
		{"no name (the adapter fills it in)", poller.Operation{}, false},
		{"no project", poller.Operation{Name: asked}, false},
		{"another id", poller.Operation{Name: "projects/example-proj/operations/ASA2", Project: "example-proj"}, true},
		{"another bare id", poller.Operation{Name: "ASA2"}, true},
		{"same id in another project", poller.Operation{Name: "projects/other-proj/operations/ASA1", Project: "other-proj"}, true},
		{"our name, another project", poller.Operation{Name: asked, Project: "other-proj"}, true},
		{"id differs in case", poller.Operation{Name: "projects/example-proj/operations/asa1"}, true},
		{"not a name", poller.Operation{Name: "projects/example-proj/operations/ASA1/../ASA2"}, true},
		{"huge name", poller.Operation{Name: strings.Repeat("x", 20<<20)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := poller.CheckAnswer(asked, tt.op)
			if got := errors.Is(err, poller.ErrForeignAnswer); got != tt.foreign {
				t.Fatalf("CheckAnswer(%q, %.60q) = %v; want foreign %v", asked, tt.op.Name, err, tt.foreign)
			}
			if err != nil && len(err.Error()) > 1000 {
				t.Fatalf("CheckAnswer error has %d bytes; want the names it quotes bounded", len(err.Error()))
			}
		})
	}
	if err := poller.CheckAnswer("ASA1", poller.Operation{Name: "ASA1"}); err == nil || errors.Is(err, poller.ErrForeignAnswer) {
		t.Errorf("CheckAnswer with a bare id asked = %v; want ParseName's error", err)
	}
	err := poller.CheckAnswer(asked, poller.Operation{Name: "projects/other-proj/operations/ASA1"})
	if got, want := fmt.Sprint(err), `asked for "projects/example-proj/operations/ASA1", the API answered with "projects/other-proj/operations/ASA1": the answer is about another operation`; got != want {
		t.Errorf("CheckAnswer error = %q; want %q", got, want)
	}
}

func TestCheckStarted(t *testing.T) {
	tests := []struct {
		name    string
		op      poller.Operation
		foreign bool
	}{
		{"ours", poller.Operation{Name: "projects/example-proj/operations/ASA1", Project: "example-proj"}, false},
		{"no name (the emulator)", poller.Operation{Done: true}, false},
		{"another project's name", poller.Operation{Name: "projects/other-proj/operations/ASA1"}, true},
		{"another project", poller.Operation{Name: "projects/example-proj/operations/ASA1", Project: "other-proj"}, true},
		{"bare id", poller.Operation{Name: "ASA1"}, true},
		{"a database's name for (default)", poller.Operation{Name: "projects/example-proj/databases/analytics/operations/ASA1"}, true},
		{"(default) through the Firestore Admin API", poller.Operation{Name: "projects/example-proj/databases/(default)/operations/ASA1"}, false},
	}
	for _, tt := range tests {
		err := poller.CheckStarted("example-proj", "", tt.op)
		if got := errors.Is(err, poller.ErrForeignAnswer); got != tt.foreign {
			t.Errorf("%s: CheckStarted(example-proj, %+v) = %v; want foreign %v", tt.name, tt.op, err, tt.foreign)
		}
	}
}

func TestCheckStartedNamedDatabase(t *testing.T) {
	tests := []struct {
		name    string
		op      poller.Operation
		foreign bool
	}{
		{"ours", poller.Operation{Name: "projects/example-proj/databases/analytics/operations/ASA1"}, false},
		{"another database's", poller.Operation{Name: "projects/example-proj/databases/billing/operations/ASA1"}, true},
		{"a Datastore Admin API name", poller.Operation{Name: "projects/example-proj/operations/ASA1"}, true},
		{"another database field", poller.Operation{Name: "projects/example-proj/databases/analytics/operations/ASA1", Database: "billing"}, true},
		{"another project's", poller.Operation{Name: "projects/other-proj/databases/analytics/operations/ASA1"}, true},
	}
	for _, tt := range tests {
		err := poller.CheckStarted("example-proj", "analytics", tt.op)
		if got := errors.Is(err, poller.ErrForeignAnswer); got != tt.foreign {
			t.Errorf("%s: CheckStarted(example-proj, analytics, %+v) = %v; want foreign %v", tt.name, tt.op, err, tt.foreign)
		}
	}
}
