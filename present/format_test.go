package present

import (
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

func TestThousands(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {123456, "123,456"},
		{1234567, "1,234,567"}, {21933027, "21,933,027"}, {-1234, "-1,234"},
	}
	for _, tc := range tests {
		if got := Count(tc.n); got != tc.want {
			t.Errorf("Count(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 bytes"},
		{1, "1 byte"},
		{1023, "1,023 bytes"},
		{1024, "1.0 KiB (1,024 bytes)"},
		{611250312, "582.9 MiB (611,250,312 bytes)"},
		{12421772610, "11.6 GiB (12,421,772,610 bytes)"},
		{3 << 40, "3.0 TiB (3,298,534,883,328 bytes)"},
		{1 << 62, "4.0 EiB (4,611,686,018,427,387,904 bytes)"},
	}
	for _, tc := range tests {
		if got := ByteSize(tc.n); got != tc.want {
			t.Errorf("ByteSize(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}

func TestProgress(t *testing.T) {
	tests := []struct {
		name                 string
		completed, estimated int64
		want                 string
	}{
		{"no estimate", 1234, 0, "1,234 (no estimate)"},
		{"negative estimate", 5, -1, "5 (no estimate)"},
		{"nothing yet", 0, 1000, "0 of ~1,000 (0.0%)"},
		{"part", 8512344, 21898182, "8,512,344 of ~21,898,182 (38.8%)"},
		{"almost, rounded down", 9996, 10000, "9,996 of ~10,000 (99.9%)"},
		{"exactly the estimate", 1000, 1000, "1,000 of ~1,000 (100%)"},
		{"past the estimate", 21933027, 21898182, "21,933,027 of ~21,898,182 (100%)"},
	}
	for _, tc := range tests {
		if got := Progress(tc.completed, tc.estimated, Count); got != tc.want {
			t.Errorf("%s: Progress(%d, %d) = %q; want %q", tc.name, tc.completed, tc.estimated, got, tc.want)
		}
	}
	if got, want := Progress(4811250312, 12395423718, Bytes), "4.5 GiB of ~11.5 GiB (38.8%)"; got != want {
		t.Errorf("progress of bytes = %q; want %q", got, want)
	}
}

func TestElapsed(t *testing.T) {
	start := time.Date(2026, 11, 23, 3, 0, 4, 837e6, time.UTC)
	tests := []struct {
		start, now time.Time
		want       string
	}{
		{start, start.Add(12*time.Minute + 30*time.Second + 200*time.Millisecond), "12m30s"},
		{start, start.Add(-time.Minute), "0s"},
		{time.Time{}, start, "—"},
	}
	for _, tc := range tests {
		if got := Elapsed(tc.start, tc.now); got != tc.want {
			t.Errorf("Elapsed(%v, %v) = %q; want %q", tc.start, tc.now, got, tc.want)
		}
	}
}

func TestHeadline(t *testing.T) {
	ok := poller.Operation{
		Name: "projects/example-proj/operations/abc", Done: true, State: poller.StateSuccessful,
		EntitiesCompleted: 1000, BytesCompleted: 9961472,
	}
	one := ok
	one.EntitiesCompleted, one.BytesCompleted = 1, 10
	failed := ok
	failed.State, failed.ErrorCode, failed.ErrorMessage = poller.StateFailed, 7, "no access"
	tests := []struct {
		name string
		r    poller.Report
		want string
	}{
		{"success", poller.Report{Outcome: poller.OutcomeSuccess, Operation: ok},
			"Datastore export succeeded (example-proj) — 1,000 entities, 9.5 MiB"},
		{"one entity", poller.Report{Outcome: poller.OutcomeSuccess, Operation: one},
			"Datastore export succeeded (example-proj) — 1 entity, 10 B"},
		{"shrunk", poller.Report{Outcome: poller.OutcomeSuccess, Operation: ok, Shrink: &poller.Shrink{PreviousEntities: 2000, Entities: 1000}},
			"Datastore export succeeded (example-proj) — 1,000 entities, 9.5 MiB (50.0% fewer entities than the previous export)"},
		{"failure", poller.Report{Outcome: poller.OutcomeFailure, Operation: failed},
			"Datastore export failed (example-proj) — no access (code 7 PERMISSION_DENIED)"},
		{"start error", poller.Report{Operation: poller.Operation{Project: "example-proj"}, StartError: "denied"},
			"Datastore export could not be started (example-proj) — denied"},
		{"stale", poller.Report{Stale: &poller.Stale{Project: "example-proj", LastSuccess: poller.Success{Name: "x"}, After: 36 * time.Hour}},
			"No Datastore export of example-proj has succeeded for over 36h"},
	}
	for _, tc := range tests {
		if got := Headline(tc.r, nil); got != tc.want {
			t.Errorf("%s: headline = %q; want %q", tc.name, got, tc.want)
		}
	}
}
