package present

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dsexport/dsexport/poller"
)

func TestFormatCut(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{strings.Repeat("x", 100), 40, "xxxxxxxxx … (cut, 100 characters in all)"},
		// A cut ends at a rune, never inside one, and drops the spaces before the note.
		{"ééééé    " + strings.Repeat("é", 91), 40, "ééééé … (cut, 100 characters in all)"},
		{strings.Repeat("x", 10000), 40, "xxxxxx … (cut, 10,000 characters in all)"},
		{strings.Repeat("x", 100), 5, "…"},
		{strings.Repeat("x", 100), 0, ""},
	}
	for _, tc := range tests {
		got := Cut(tc.s, tc.max)
		if got != tc.want {
			t.Errorf("Cut(%.20q…, %d) = %q; want %q", tc.s, tc.max, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > tc.max {
			t.Errorf("Cut(%.20q…, %d) has %d characters", tc.s, tc.max, n)
		}
	}
}

// TestCutWidth counts & as five characters, as Slack's escaping (&amp;) does.
func TestFormatCutWidth(t *testing.T) {
	amp := func(r rune) int {
		if r == '&' {
			return 5
		}
		return 1
	}
	s := strings.Repeat("&", 20)
	if got := CutWidth(s, 100, amp); got != s {
		t.Errorf("CutWidth of 20 & within 100 = %q; want it whole", got)
	}
	got := CutWidth(s, 60, amp)
	if want := "&&&&&&" + CutNote(20); got != want {
		t.Errorf("CutWidth(20 &, 60) = %q; want %q", got, want)
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestFormatList(t *testing.T) {
	long := strings.Repeat("K", 1500)
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"none", nil, "all"},
		{"two", []string{"User", "Order"}, "User, Order"},
		{"ten", names("K", 10), "K0, K1, K2, K3, K4, K5, K6, K7, K8, K9"},
		{"eleven", names("K", 11), "K0, K1, K2, K3, K4, K5, K6, K7, K8, K9 and 1 more"},
		{"hundred", append([]string{"User", "Order"}, names("Kind", 98)...),
			"User, Order, Kind0, Kind1, Kind2, Kind3, Kind4, Kind5, Kind6, Kind7 and 90 more"},
		{"long names", names(strings.Repeat("n", 60), 5),
			strings.Repeat("n", 60) + "0, " + strings.Repeat("n", 60) + "1, " + strings.Repeat("n", 60) + "2 and 2 more"},
		{"one too long", []string{long}, Cut(long, ListMaxChars)},
		{"first too long", []string{long, "User"}, Cut(long, ListMaxChars-len(" and 1 more")) + " and 1 more"},
		{"default namespace", []string{"", "tenant-a"}, "(default), tenant-a"},
	}
	for _, tc := range tests {
		got := List(tc.values, DefaultNamespace)
		if got != tc.want {
			t.Errorf("%s: List = %q; want %q", tc.name, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > ListMaxChars {
			t.Errorf("%s: List has %d characters; want at most %d", tc.name, n, ListMaxChars)
		}
	}
}

// TestFormatLongText checks that text from the Admin API is cut, saying so,
// and that the command after it is whole.
func TestFormatLongText(t *testing.T) {
	huge := strings.Repeat("permission denied; ", 527)[:10000]
	op := poller.Operation{
		Name: "projects/p/operations/abc", Project: "p", Done: true, State: poller.StateFailed,
		ErrorCode: 7, ErrorMessage: huge,
		Kinds: names("Kind", 100), Namespaces: names("tenant-", 100),
	}
	r := poller.Report{Outcome: poller.OutcomeFailure, Operation: op, LastError: huge}
	m := Format(r, nil)
	want := map[string]string{
		"Error":            Cut(huge, MaxDetail) + " (code 7 PERMISSION_DENIED)",
		"Last poll failed": Cut(huge, MaxDetail),
		"Details":          "gcloud datastore operations describe projects/p/operations/abc",
	}
	for _, n := range m.Notes {
		if got, ok := want[n.Label]; !ok || n.Text != got {
			t.Errorf("note %s = %.60q…; want %.60q…", n.Label, n.Text, got)
		}
		delete(want, n.Label)
	}
	if len(want) > 0 {
		t.Errorf("notes %v missing from %+v", want, m.Notes)
	}
	if !strings.HasSuffix(Cut(huge, MaxDetail), " … (cut, 10,000 characters in all)") {
		t.Errorf("cut error does not say it was cut: %q", Cut(huge, MaxDetail))
	}
	for _, f := range m.Fields {
		if (f.Title == "Kinds" || f.Title == "Namespaces") && !strings.HasSuffix(f.Value, " and 90 more") {
			t.Errorf("%s = %q; want it summarised", f.Title, f.Value)
		}
	}
	if got := Headline(r, nil); !strings.Contains(got, " … (cut, 10,000 characters in all) (code 7") {
		t.Errorf("headline = %.80q…; want the error cut", got)
	}
}
