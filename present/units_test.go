package present

import (
	"testing"

	"github.com/dsexport/dsexport/poller"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		completed, estimated int64
		want                 string
	}{
		{5, 0, "no estimate"}, {0, 1000, "0.0%"}, {1, 3, "33.3%"}, {9996, 10000, "99.9%"},
		{1000, 1000, "100%"}, {1200, 1000, "100%"},
	} {
		if got := Percent(tc.completed, tc.estimated); got != tc.want {
			t.Errorf("Percent(%d, %d) = %q; want %q", tc.completed, tc.estimated, got, tc.want)
		}
	}
}

func TestNextCommand(t *testing.T) {
	name := "projects/p/operations/op1"
	for _, tc := range []struct {
		name string
		r    poller.Report
		want Command
		ok   bool
	}{
		{"success", poller.Report{Outcome: poller.OutcomeSuccess, Operation: poller.Operation{Name: name, OutputURL: "gs://b/x.overall_export_metadata"}},
			Command{"Restore", "gcloud datastore import gs://b/x.overall_export_metadata"}, true},
		{"success without output", poller.Report{Outcome: poller.OutcomeSuccess, Operation: poller.Operation{Name: name}}, Command{}, false},
		{"failure", poller.Report{Outcome: poller.OutcomeFailure, Operation: poller.Operation{Name: name}},
			Command{"Details", "gcloud datastore operations describe " + name}, true},
		{"refused", poller.ReportOf(poller.Record{Outcome: poller.OutcomeFailure, Operation: poller.Operation{Name: name, Refused: true, ErrorMessage: "no"}}), Command{}, false},
	} {
		got, ok := NextCommand(tc.r)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: NextCommand = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBadgeOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    poller.Report
		want Badge
	}{
		{"refused", poller.Report{Outcome: poller.OutcomeFailure, Operation: poller.Operation{Refused: true}}, Badge{"bad", "not started"}},
		{"cancelled", poller.Report{Outcome: poller.OutcomeFailure, Operation: poller.Operation{ErrorCode: 1}}, Badge{"bad", "cancelled"}},
		{"done, not classified", poller.Report{Operation: poller.Operation{Done: true, State: poller.StateSuccessful}}, Badge{"ok", "succeeded"}},
		{"running", poller.Report{Operation: poller.Operation{State: poller.StateProcessing}}, Badge{"run", "running"}},
	} {
		if got := BadgeOf(tc.r); got != tc.want {
			t.Errorf("%s: BadgeOf = %+v; want %+v", tc.name, got, tc.want)
		}
	}
}
