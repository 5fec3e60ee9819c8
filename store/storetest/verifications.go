package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// testVerifications runs the content verification's subtests, each on a
// store of its own.
func testVerifications(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"ZeroState", testVerifiedZeroState},
		{"LatestAndGood", testLatestAndGood},
		{"Bounded", testVerificationBounded},
		{"LongKindNames", testVerificationLongKindNames},
		{"PerOperationAndForwardOnly", testVerificationPerOperation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

// verification is a verified check of export id of target, ended at at,
// with nanoseconds the store has to cut and a zone it has to turn to UTC.
func verification(target, id string, at time.Time) poller.Verification {
	return poller.Verification{
		Operation: opName(id), Target: target, Project: "example-proj", Database: "(default)",
		OutputURL: "gs://example-backups/daily/" + id + "/" + id + ".overall_export_metadata",
		At:        at.In(time.FixedZone("CET", 3600)), ExportTime: at.Add(-time.Hour + 7),
		Content: poller.Content{
			MetadataURL: "gs://example-backups/daily/" + id + "/" + id + ".overall_export_metadata",
			Database:    "(default)", Objects: 4, Files: 2, Bytes: 4096,
			Kinds:    []poller.KindCount{{Kind: "Order", Entities: 20}, {Namespace: "eu", Kind: "User", Entities: 10}},
			Entities: 30,
		},
		Source: map[string]int64{"/Order": 20, "eu/User": 11},
		Findings: []poller.ContentFinding{{Rule: poller.ContentSourceCount, Namespace: "eu", Kind: "User", Expected: 11, Got: 10,
			Text: "the source holds 11 entities of kind \"User\" in namespace \"eu\", the export 10"}},
	}
}

// storedVerification is v as the store gives it back.
func storedVerification(v poller.Verification) *poller.Verification {
	v = v.Bounded()
	v.At, v.ExportTime = us(v.At), us(v.ExportTime)
	return &v
}

func verifiedState(t *testing.T, s Store, target string) poller.VerifiedState {
	t.Helper()
	st, err := s.VerifiedState(context.Background(), target)
	if err != nil {
		t.Fatalf("VerifiedState(%q): %v", target, err)
	}
	return st
}

func recordVerification(t *testing.T, s Store, v poller.Verification) {
	t.Helper()
	if err := s.RecordVerification(context.Background(), v, v.At.Add(time.Second)); err != nil {
		t.Fatalf("RecordVerification(%q): %v", v.Operation, err)
	}
}

// wantState fails the test unless target's state has latest and good.
func wantState(t *testing.T, s Store, target string, latest, good *poller.Verification, what string) {
	t.Helper()
	got := verifiedState(t, s, target)
	want := poller.VerifiedState{Target: target, Latest: latest, Good: good}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: VerifiedState(%q) =\n%s\nwant\n%s", what, target, describeState(got), describeState(want))
	}
}

func describeState(st poller.VerifiedState) string {
	describe := func(v *poller.Verification) string {
		if v == nil {
			return "none"
		}
		return fmt.Sprintf("%+v", *v)
	}
	return fmt.Sprintf("target %q\n latest %s\n good %s", st.Target, describe(st.Latest), describe(st.Good))
}

func testVerifiedZeroState(t *testing.T, s Store) {
	for _, target := range []string{"analytics", ""} {
		wantState(t, s, target, nil, nil, "never verified")
	}
}

func testLatestAndGood(t *testing.T, s Store) {
	v1 := verification("analytics", "e1", base)
	if !v1.Verified() {
		t.Fatal("the contract's verification is not Verified")
	}
	recordVerification(t, s, v1)
	wantState(t, s, "analytics", storedVerification(v1), storedVerification(v1), "one good verification")

	// An alarm (a kind gone) is the Latest, not the Good.
	v2 := verification("analytics", "e2", base.Add(24*time.Hour))
	v2.Content.Kinds = v2.Content.Kinds[:1]
	v2.Findings = []poller.ContentFinding{{Rule: poller.ContentKindGone, Namespace: "eu", Kind: "User", Expected: 10, Text: "kind \"User\" is gone"}}
	if !v2.Alarm() {
		t.Fatal("v2 raises no alarm")
	}
	recordVerification(t, s, v2)
	wantState(t, s, "analytics", storedVerification(v2), storedVerification(v1), "an alarm after a good one")

	// Recording the Latest's operation again (a retried report) changes
	// nothing, even when the check found otherwise the second time.
	again := verification("analytics", "e2", base.Add(25*time.Hour))
	recordVerification(t, s, again)
	wantState(t, s, "analytics", storedVerification(v2), storedVerification(v1), "the Latest's operation recorded again")

	// A check cut by its time bound is no alarm, and not verified either.
	v3 := verification("analytics", "e3", base.Add(48*time.Hour))
	v3.Error, v3.TimedOut = "reading the export took longer than 10m0s", true
	if v3.Alarm() || v3.Verified() {
		t.Fatalf("timed-out v3: Alarm %v, Verified %v; want neither", v3.Alarm(), v3.Verified())
	}
	recordVerification(t, s, v3)
	wantState(t, s, "analytics", storedVerification(v3), storedVerification(v1), "a timed-out check")

	// An unreadable export is an alarm.
	v4 := verification("analytics", "e4", base.Add(72*time.Hour))
	v4.Error = "object gs://example-backups/daily/e4/e4.overall_export_metadata not found"
	recordVerification(t, s, v4)
	wantState(t, s, "analytics", storedVerification(v4), storedVerification(v1), "an unreadable export")

	// A good one is both; the Good's operation is not the Latest's, so
	// recording the old good one again is a new Latest.
	v5 := verification("analytics", "e5", base.Add(96*time.Hour))
	recordVerification(t, s, v5)
	wantState(t, s, "analytics", storedVerification(v5), storedVerification(v5), "a good one after alarms")

	// Each target is its own, the environment's single one ("") too.
	other := verification("orders", "o1", base)
	single := verification("", "s1", base)
	single.Findings = nil
	recordVerification(t, s, other)
	recordVerification(t, s, single)
	wantState(t, s, "orders", storedVerification(other), storedVerification(other), "another target")
	wantState(t, s, "", storedVerification(single), storedVerification(single), "the single target")
	wantState(t, s, "analytics", storedVerification(v5), storedVerification(v5), "after other targets recorded theirs")
}

// hugeKinds are n kinds of short names, 1 entity each.
func hugeKinds(n int) []poller.KindCount {
	kinds := make([]poller.KindCount, n)
	for i := range kinds {
		kinds[i] = poller.KindCount{Kind: fmt.Sprintf("Kind%05d", i), Entities: 1}
	}
	return kinds
}

// testVerificationBounded: a verification of 5000 kinds, 5000 source
// counts, 200 findings and 100 KiB texts is kept bounded, as Bounded cuts
// it, within an entity on the emulators.
func testVerificationBounded(t *testing.T, s Store) {
	v := verification("analytics", "huge", base)
	v.Content.Kinds = hugeKinds(5000)
	v.Content.Entities = 5000
	v.Source = map[string]int64{}
	for _, k := range v.Content.Kinds {
		v.Source["/"+k.Kind] = 1
	}
	v.Findings = nil
	for i := range 200 {
		v.Findings = append(v.Findings, poller.ContentFinding{Rule: poller.ContentSourceCount, Kind: fmt.Sprint("Kind", i), Text: strings.Repeat("t", 100<<10)})
	}
	v.Error = strings.Repeat("e", 100<<10)
	v.SourceError = strings.Repeat("s", 100<<10)
	recordVerification(t, s, v)
	st := verifiedState(t, s, "analytics")
	if st.Latest == nil {
		t.Fatal("no Latest after recording a huge verification")
	}
	got := *st.Latest
	if want := storedVerification(v); !reflect.DeepEqual(&got, want) {
		t.Fatalf("huge verification came back as %d kinds, %d source counts, %d findings, error of %d bytes; want it as Bounded cuts it: %d, %d, %d, %d",
			len(got.Content.Kinds), len(got.Source), len(got.Findings), len(got.Error),
			len(want.Content.Kinds), len(want.Source), len(want.Findings), len(want.Error))
	}
	if n := len(got.Content.Kinds); n != poller.MaxStoredKinds || got.Content.Kinds[n-1].Kind != poller.CutKind || !got.Content.KindsCut ||
		len(got.Findings) != poller.MaxFindings || len(got.Error) > poller.MaxErrorText || len(got.Findings[0].Text) > poller.MaxErrorText {
		t.Fatalf("huge verification kept %d kinds (cut %v), %d findings, error of %d bytes; want %d kinds, the last %q, %d findings, at most %d bytes",
			n, got.Content.KindsCut, len(got.Findings), len(got.Error), poller.MaxStoredKinds, poller.CutKind, poller.MaxFindings, poller.MaxErrorText)
	}
	if st.Good != nil {
		t.Fatal("an unreadable huge export became the Good")
	}
}

// testVerificationLongKindNames: kinds of the longest names Datastore
// allows, as many as Bounded keeps, twice over (Latest and Good) pass an
// entity's 1 MiB; the store cuts further rather than fail, keeping the
// entities' sum.
func testVerificationLongKindNames(t *testing.T, s Store) {
	v := verification("analytics", "long", base)
	v.Findings = nil
	v.Content.Kinds, v.Content.Entities = nil, 0
	v.Source = map[string]int64{}
	for i := range poller.MaxStoredKinds {
		k := poller.KindCount{Kind: fmt.Sprintf("%04d", i) + strings.Repeat("k", poller.MaxKind-4), Entities: int64(i)}
		v.Content.Kinds = append(v.Content.Kinds, k)
		v.Content.Entities += k.Entities
		v.Source["/"+k.Kind] = k.Entities
	}
	if !v.Verified() {
		t.Fatal("the long-named verification is not Verified")
	}
	recordVerification(t, s, v)
	st := verifiedState(t, s, "analytics")
	if st.Latest == nil || st.Good == nil || !reflect.DeepEqual(st.Latest, st.Good) {
		t.Fatalf("state after a verified long-named verification: Latest %v, Good %v; want both, equal", st.Latest != nil, st.Good != nil)
	}
	got := st.Latest.Content
	var sum int64
	for _, k := range got.Kinds {
		sum += k.Entities
	}
	if n := len(got.Kinds); n >= poller.MaxStoredKinds || n < 2 || got.Kinds[n-1].Kind != poller.CutKind || !got.KindsCut || sum != v.Content.Entities {
		t.Fatalf("long-named verification kept %d kinds (cut %v) summing %d; want fewer than %d, the last %q, summing %d",
			n, got.KindsCut, sum, poller.MaxStoredKinds, poller.CutKind, v.Content.Entities)
	}
	if len(st.Latest.Source) != len(got.Kinds)-1 {
		t.Fatalf("long-named verification kept %d source counts for %d kinds; want those of the kinds kept", len(st.Latest.Source), len(got.Kinds)-1)
	}
}

// testVerificationPerOperation: each operation's verification is kept and
// read back by its name, and a late one (an old export's, reported after a
// newer one) is kept without taking the target's state back.
func testVerificationPerOperation(t *testing.T, s Store) {
	ctx := context.Background()
	now := time.Now()
	if v, err := s.VerificationOf(ctx, opName("none")); err != nil || v != nil {
		t.Fatalf("VerificationOf(unrecorded) = %v, %v; want nil", v, err)
	}
	newer := verification("shop", "v-newer", now)
	older := verification("shop", "v-older", now.Add(-24*time.Hour))
	recordVerification(t, s, newer)
	recordVerification(t, s, older)
	wantState(t, s, "shop", storedVerification(newer), storedVerification(newer), "after a late verification of an older export")
	for _, v := range []poller.Verification{newer, older} {
		got, err := s.VerificationOf(ctx, v.Operation)
		if err != nil || !reflect.DeepEqual(got, storedVerification(v)) {
			t.Errorf("VerificationOf(%s) = %+v, %v; want it as recorded", v.Operation, got, err)
		}
	}
	// Once recorded, an operation's verification stays.
	again := older
	again.Error = "read again, and failed"
	recordVerification(t, s, again)
	if got, _ := s.VerificationOf(ctx, older.Operation); got == nil || got.Error != "" {
		t.Errorf("VerificationOf after a second record = %+v; want the first", got)
	}
	// A newer alarm moves the latest on, not the good one.
	alarm := verification("shop", "v-alarm", now.Add(time.Hour))
	alarm.Findings = []poller.ContentFinding{{Rule: poller.ContentEmpty, Text: "empty"}}
	recordVerification(t, s, alarm)
	wantState(t, s, "shop", storedVerification(alarm), storedVerification(newer), "after a newer alarm")
}
