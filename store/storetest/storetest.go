// Package storetest is the contract every store of dsexport keeps, run
// against each implementation: store.Store on the Datastore emulator and on
// the Firestore emulator in Datastore mode, and memstore.Store in memory.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// Store is what the contract exercises: the poller's port and the reads of
// the server's pages and the CLI.
type Store interface {
	poller.Store
	List(ctx context.Context, limit int) ([]poller.Record, error)
	ListPage(ctx context.Context, limit int, cursor string) ([]poller.Record, string, error)
	Snapshots(ctx context.Context, name string) ([]poller.Snapshot, error)
	BackupStore
	poller.VerificationStore
	poller.DrillStore
}

// Run runs the contract against the stores open returns. Every subtest opens
// a store of its own, holding no records, so open must give a fresh one on
// each call (a project of its own on the emulator) and close it in t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateEmptyName", testCreateEmptyName},
		{"ZeroTimesAndEmptySlices", testZeroTimesAndEmptySlices},
		{"NoAliasing", testNoAliasing},
		{"CreateTwiceKeepsFirst", testCreateTwiceKeepsFirst},
		{"NotFound", testNotFound},
		{"AddSnapshot", testAddSnapshot},
		{"CountPoll", testCountPoll},
		{"OutcomeStaysFirst", testOutcomeStaysFirst},
		{"SetMessage", testSetMessage},
		{"ClaimReport", testClaimReport},
		{"ConcurrentClaims", testConcurrentClaims},
		{"OutcomeAndReported", testOutcomeAndReported},
		{"List", testList},
		{"ListTies", testListTies},
		{"ConcurrentAddSnapshot", testConcurrentAddSnapshot},
		{"ConcurrentDistinctPolls", testConcurrentDistinctPolls},
		{"Leases", testLeases},
		{"ConcurrentSuccesses", testConcurrentSuccesses},
		{"StartHolders", testStartHolders},
		{"ConcurrentLeases", testConcurrentLeases},
		{"Pending", testPending},
		{"RecordSuccessAndHealth", testRecordSuccessAndHealth},
		{"HealthFirstSeen", testHealthFirstSeen},
		{"StaleAlarm", testStaleAlarm},
		{"Starts", testStarts},
		{"ListPageCursorKeepsPlace", testListPageCursorKeepsPlace},
		{"ListPageRecord", testListPageRecord},
		{"ListPageInvalid", testListPageInvalid},
		{"CancelledContext", testCancelledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.test(t, open(t))
		})
	}
	t.Run("ListPage", func(t *testing.T) { testListPage(t, open) })
	t.Run("Backups", func(t *testing.T) { testBackups(t, open) })
	t.Run("Verifications", func(t *testing.T) { testVerifications(t, open) })
	t.Run("Drills", func(t *testing.T) { testDrills(t, open) })
}

// base is the creation time of the operations in the contract.
var base = time.Date(2026, 11, 23, 3, 0, 4, 837_123_456, time.UTC)

// successful is admin/testdata/wire/successful.json as the poller parses it,
// under a name of the caller's, with nanoseconds the store has to cut to
// microseconds and an error the sample lacks, to see it round-trip.
func successful(name string) poller.Operation {
	return poller.Operation{
		Name:              name,
		Project:           "example-proj",
		Done:              true,
		State:             poller.StateSuccessful,
		Trigger:           poller.TriggerCron,
		Kinds:             []string{"User", "Order"},
		Namespaces:        []string{""},
		OutputURLPrefix:   "gs://example-backups/daily",
		OutputURL:         "gs://example-backups/daily/2026-11-23T03:00:04_43519/2026-11-23T03:00:04_43519.overall_export_metadata",
		EntitiesCompleted: 21933027,
		EntitiesEstimated: 21898182,
		BytesCompleted:    12421772610,
		BytesEstimated:    12395423718,
		StartTime:         time.Date(2026, 11, 23, 3, 0, 4, 837_000_999, time.UTC),
		// Not UTC on purpose: the store keeps the instant, in UTC.
		EndTime:      time.Date(2026, 11, 23, 4, 53, 11, 204_000_000, time.FixedZone("CET", 3600)),
		ErrorCode:    9,
		ErrorMessage: "a long message that a failed export would carry, here only to see it round-trip",
	}
}

// running is a first snapshot: nothing done, no end time.
func running(name string) poller.Operation {
	return poller.Operation{
		Name:            name,
		Project:         "example-proj",
		State:           poller.StateProcessing,
		Trigger:         poller.TriggerManual,
		OutputURLPrefix: "gs://example-backups/daily",
		StartTime:       base,
	}
}

func opName(id string) string { return "projects/example-proj/operations/" + id }

// us is t as the store gives it back.
func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// create records op at at or fails the test.
func create(t *testing.T, s Store, op poller.Operation, at time.Time) poller.Record {
	t.Helper()
	rec, err := s.Create(context.Background(), op, at)
	if err != nil {
		t.Fatalf("Create(%q): %v", op.Name, err)
	}
	return rec
}

// names are the names of recs, in order.
func names(recs []poller.Record) []string {
	var ns []string
	for _, r := range recs {
		ns = append(ns, r.Name)
	}
	return ns
}
