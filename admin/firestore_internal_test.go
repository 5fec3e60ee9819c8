package admin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	fsadmin "google.golang.org/api/firestore/v1"

	"github.com/dsexport/dsexport/poller"
)

// Fuzz targets of the parsers of the backup calls' answers. Run one with
//
//	go test ./admin -run '^$' -fuzz '^FuzzParseBackups$' -fuzztime 20s

const fuzzUID = "5f1c2b1e-8a5d-4c7e-9b2f-3d6a7e8f9a01"

func addSample(f *testing.F, file string) {
	data, err := os.ReadFile(filepath.Join("testdata", "firestore", file))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
}

func FuzzParseBackups(f *testing.F) {
	addSample(f, "backups.json")
	for _, s := range []string{
		`{}`, `{"backups": [null]}`, `{"backups": [{"name": "projects/p/locations/-/backups/x"}]}`,
		`{"backups": [{"name": "projects/p/locations/nam5/backups/x", "databaseUid": "other"}]}`,
		`{"backups": [{"name": "projects/p/locations/nam5/backups/x", "stats": {"sizeBytes": "-1"}}]}`,
		`{"backups": [{"name": "projects/p/locations/nam5/backups/x", "stats": {"documentCount": "-1"}}]}`,
		`{"unreachable": ["", "\u0000"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp fsadmin.GoogleFirestoreAdminV1ListBackupsResponse
		if json.Unmarshal(data, &resp) != nil {
			return
		}
		backups, unreachable, err := parseBackups(fuzzUID, &resp)
		if err != nil {
			return
		}
		if len(backups) > MaxBackups || len(unreachable) > MaxUnreachable {
			t.Fatalf("kept %d backups, %d unreachable; beyond the bounds", len(backups), len(unreachable))
		}
		for i, b := range backups {
			if !backupNameRE.MatchString(b.Name) || b.DatabaseUID != fuzzUID || len(b.Database) > poller.MaxName || len(b.State) > poller.MaxLabel ||
				b.Documents < 0 || b.Bytes < 0 {
				t.Fatalf("backups[%d] = %+v: a bad name, another uid, negative stats, or beyond the bounds", i, b)
			}
			if i > 0 && backups[i-1].SnapshotTime.Before(b.SnapshotTime) {
				t.Fatalf("backups not newest first at %d", i)
			}
		}
		for _, u := range unreachable {
			if len(u) > poller.MaxName {
				t.Fatalf("an unreachable location of %d bytes", len(u))
			}
		}
	})
}

func FuzzParseSchedules(f *testing.F) {
	addSample(f, "backupSchedules.json")
	for _, s := range []string{
		`{"backupSchedules": [{"retention": "0.5s"}]}`, `{"backupSchedules": [{"retention": "9223372036s"}]}`,
		`{"backupSchedules": [{"retention": ".5s"}]}`, `{"backupSchedules": [{"retention": "+5s"}]}`,
		`{"backupSchedules": [{"weeklyRecurrence": {}}]}`,
	} {
		f.Add([]byte(s))
	}
	const parent = "projects/example-proj/databases/analytics"
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp fsadmin.GoogleFirestoreAdminV1ListBackupSchedulesResponse
		if json.Unmarshal(data, &resp) != nil {
			return
		}
		list, err := parseSchedules(parent, resp.BackupSchedules)
		if err != nil {
			return
		}
		if len(list) > MaxSchedules {
			t.Fatalf("kept %d schedules", len(list))
		}
		for i, s := range list {
			if s.Retention < 0 || len(s.Name) > poller.MaxName || len(s.Weekday) > poller.MaxLabel {
				t.Fatalf("schedules[%d] = %+v: negative or beyond the bounds", i, s)
			}
			if s.Recurrence != "" && s.Recurrence != poller.Daily && s.Recurrence != poller.Weekly {
				t.Fatalf("schedules[%d] recurrence %q", i, s.Recurrence)
			}
			// The duration written back as the API writes it reads the same.
			if d, err := parseDuration("retention", formatDuration(s.Retention)); err != nil || d != s.Retention {
				t.Fatalf("retention %v written back reads %v, %v", s.Retention, d, err)
			}
		}
	})
}

func FuzzParseDatabase(f *testing.F) {
	addSample(f, "database.json")
	f.Add([]byte(`{"uid": "", "versionRetentionPeriod": "604800s"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var db fsadmin.GoogleFirestoreAdminV1Database
		if json.Unmarshal(data, &db) != nil {
			return
		}
		info, err := parseDatabase(&db)
		if err != nil {
			return
		}
		if (info.UID != "" && !uidRE.MatchString(info.UID)) || len(info.Name) > poller.MaxName ||
			len(info.Location) > poller.MaxLabel || len(info.Type) > poller.MaxLabel || info.VersionRetention < 0 {
			t.Fatalf("parseDatabase(%q) = %+v: a uid unfit for a filter, or beyond the bounds", data, info)
		}
	})
}

// formatDuration writes d as the API does: seconds, nine fractional
// digits when there are any, "s".
func formatDuration(d time.Duration) string {
	sec, nanos := int64(d/time.Second), int64(d%time.Second)
	if nanos == 0 {
		return strconv.FormatInt(sec, 10) + "s"
	}
	return fmt.Sprintf("%d.%09ds", sec, nanos)
}
