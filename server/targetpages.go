package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// This file is the targets at a glance: a row on the status page and a page
// of its own for each, and /api/targets.

// The target states a row's badge shows.
const (
	stateOK      = "ok"      // the last good backup is within its expectation
	stateLate    = "late"    // past its next due, by less than half the expectation
	stateOverdue = "overdue" // past its next due by more
	stateNever   = "never"   // no good backup at all
	stateRunning = "running" // an export is under way (and nothing is overdue)
)

// badges are the states as the pages show them.
var badges = map[string]present.Badge{
	stateOK:      {Class: "ok", Text: "ok"},
	stateLate:    {Class: "warn", Text: "late"},
	stateOverdue: {Class: "bad", Text: "overdue"},
	stateNever:   {Class: "bad", Text: "never"},
	stateRunning: {Class: "run", Text: "running"},
}

// The kinds of good backup.
const (
	kindExport = "export"
	kindBackup = "backup" // a managed backup
)

// How far back a target's state is read: records until its newest success,
// and its newest recorded backups; targetWorkers targets at once.
const (
	targetScan    = 20
	backupScan    = 50
	targetWorkers = 8
)

// lastGood is a target's newest good backup.
type lastGood struct {
	Kind, Name string
	At         time.Time
	Record     *poller.Record // the export's record (kind export)
}

// targetState is what the status page knows of one target.
type targetState struct {
	Target   poller.Target
	Last     *lastGood
	Running  *poller.Record // an export under way newer than Last
	Expected time.Duration  // 0: none
	State    string
	// Checks are its verifications and drills.
	Checks targetChecks
}

// expectation is how old t's last good backup may be: its export
// schedule's period, its backups' allowance, the tighter of both.
func expectation(t poller.Target) time.Duration {
	var d time.Duration
	if t.Export != nil && t.Every > 0 {
		d = t.Every
	}
	if t.Backups != nil {
		if a := t.Backups.Recurrence.Allowance(); d == 0 || a < d {
			d = a
		}
	}
	return d
}

// judge is the state of a target whose last good backup is last (nil:
// none), at now.
func judge(last *lastGood, running bool, expected time.Duration, now time.Time) string {
	switch {
	case last == nil && running:
		return stateRunning
	case last == nil:
		return stateNever
	}
	age := now.Sub(last.At)
	switch {
	case expected > 0 && age > expected+expected/2:
		return stateOverdue
	case running:
		return stateRunning
	case expected > 0 && age > expected:
		return stateLate
	}
	return stateOK
}

// targetStates reads every target's state, a few targets at a time.
func (s *Server) targetStates(ctx context.Context, recs Records, now time.Time) ([]targetState, error) {
	ts := s.targets()
	out := make([]targetState, len(ts))
	errs := make([]error, len(ts))
	sem := make(chan struct{}, targetWorkers)
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = s.targetState(ctx, recs, t, now)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// targetState reads one target's newest successful export and newest READY
// managed backup, and judges them.
func (s *Server) targetState(ctx context.Context, recs Records, t poller.Target, now time.Time) (targetState, error) {
	st := targetState{Target: t, Expected: expectation(t)}
	cursor := ""
	for scanned := 0; scanned < maxScan && st.Last == nil; {
		page, next, err := recs.ListTargetPage(ctx, t.Name, targetScan, cursor)
		if err != nil {
			return st, fmt.Errorf("records of target %q: %w", t.Name, err)
		}
		scanned += len(page)
		for i := range page {
			rec := page[i]
			if rec.Target != t.Name {
				continue // "" lists every target's; the single target's records have none
			}
			if succeeded(rec) {
				at := rec.EndTime
				if at.IsZero() {
					at = rec.Updated
				}
				st.Last = &lastGood{Kind: kindExport, Name: rec.Name, At: at, Record: &rec}
				break
			}
			if st.Running == nil && present.BadgeOf(poller.ReportOf(rec)).Class == "run" {
				st.Running = &rec
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if t.Backups != nil && s.cfg.Backups != nil {
		bs, err := s.cfg.Backups.Backups(ctx, t.Name, backupScan)
		if err != nil {
			return st, fmt.Errorf("backups of target %q: %w", t.Name, err)
		}
		var newest *poller.Backup
		for i := range bs {
			if b := &bs[i]; b.State == poller.BackupReady && (newest == nil || b.SnapshotTime.After(newest.SnapshotTime)) {
				newest = b
			}
		}
		if newest != nil && (st.Last == nil || newest.SnapshotTime.After(st.Last.At)) {
			st.Last = &lastGood{Kind: kindBackup, Name: newest.Name, At: newest.SnapshotTime}
		}
	}
	st.State = judge(st.Last, st.Running != nil, st.Expected, now)
	var err error
	if st.Checks, err = s.readChecks(ctx, t, now); err != nil {
		return st, err
	}
	return st, nil
}

// nextDue is when the target's next good backup is due (zero: no expectation).
func (st targetState) nextDue() time.Time {
	if st.Last == nil || st.Expected <= 0 {
		return time.Time{}
	}
	return st.Last.At.Add(st.Expected)
}

// targetRow is one target as the pages show it.
type targetRow struct {
	Name, Link, Project, Database string
	Badge                         present.Badge
	LastKind, LastName, LastLink  string
	LastAt, LastAtISO, Age        string
	Expected                      string
	NextDue, NextDueISO           string
	// Running links the export under way.
	Running string
	// Verified and Drill are its last verified export and last drill;
	// Alarms what is wrong with them, shown beside Badge.
	Verified verifiedCell
	Drill    drillCell
	Alarms   []present.Badge
}

// targetLink is the path of a target's page; the single unnamed target has
// none (the status page is its page).
func targetLink(name string) string {
	if name == "" {
		return ""
	}
	return "/targets/" + url.PathEscape(name)
}

func (s *Server) targetRow(st targetState, now time.Time) targetRow {
	loc := s.loc()
	t := st.Target
	row := targetRow{
		Name: present.OrNone(t.Name), Link: targetLink(t.Name), Project: t.Project, Database: dbName(t.Database),
		Badge: badges[st.State], LastKind: present.None, LastAt: present.None, Age: present.None, Expected: present.None, NextDue: present.None,
	}
	if st.Expected > 0 {
		row.Expected = "within " + period(st.Expected)
	}
	if l := st.Last; l != nil {
		row.LastName, row.LastAt, row.LastAtISO = l.Name, present.TimeIn(l.At, loc, present.ListLayout), present.ISOTime(l.At)
		row.Age = present.Ago(now, l.At)
		row.LastKind = "export"
		if l.Kind == kindBackup {
			row.LastKind = "managed backup"
		}
		if l.Record != nil {
			row.LastLink = s.exportLink(*l.Record)
		}
	}
	if due := st.nextDue(); !due.IsZero() {
		row.NextDue, row.NextDueISO = present.TimeIn(due, loc, present.ListLayout), present.ISOTime(due)
	}
	if st.Running != nil {
		row.Running = s.exportLink(*st.Running)
	}
	row.Verified, row.Drill, row.Alarms = s.verifiedCell(st.Checks), s.drillCell(t, st.Checks), st.Checks.alarms()
	return row
}

// period is an expectation in whole days or hours where it is one: "2
// days", "26 hours".
func period(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		n := int(d / (24 * time.Hour))
		return fmt.Sprintf("%d %s", n, present.Plural(n, "day", "days"))
	case d >= time.Hour && d%time.Hour == 0:
		n := int(d / time.Hour)
		return fmt.Sprintf("%d %s", n, present.Plural(n, "hour", "hours"))
	}
	return present.HumanDuration(d)
}

// dbName is a database id with "" spelled "(default)".
func dbName(database string) string {
	if database == "" {
		return poller.DefaultDatabase
	}
	return database
}

// targetView is a target's own page: its row, its configuration, its
// exports as the status page shows them, and its managed backups.
type targetView struct {
	pageView
	Target   targetRow
	Fields   []field
	Backups  []backupRow
	Watched  bool // the target watches managed backups
	Exported bool // the target has an export
	history
}

type field struct{ Name, Value string }

type backupRow struct {
	Name, State           string
	Badge                 present.Badge
	Snapshot, SnapshotISO string
	Documents, Bytes      string
	Expires, ExpiresISO   string
}

// backupBadges are the states of a managed backup as the pages show them.
var backupBadges = map[poller.BackupState]present.Badge{
	poller.BackupReady:        {Class: "ok", Text: "ready"},
	poller.BackupCreating:     {Class: "run", Text: "creating"},
	poller.BackupNotAvailable: {Class: "bad", Text: "not available"},
}

func (s *Server) targetPage(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if name == "" {
		return &httpError{status: http.StatusNotFound, msg: "no target named: /targets/NAME"}
	}
	t, err := s.target(name, true)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := time.Now()
	st, err := s.targetState(ctx, recs, t, now)
	if err != nil {
		return err
	}
	v := targetView{pageView: newPageView("Target " + t.Name), Target: s.targetRow(st, now), Watched: t.Backups != nil, Exported: t.Export != nil}
	v.Fields = targetFields(t)
	list := func(ctx context.Context, limit int, cursor string) ([]poller.Record, string, error) {
		return recs.ListTargetPage(ctx, t.Name, limit, cursor)
	}
	if v.history, err = s.history(ctx, list, now); err != nil {
		return err
	}
	v.APILink = "/api/exports?target=" + url.QueryEscape(t.Name)
	if t.Backups != nil && s.cfg.Backups != nil {
		bs, err := s.cfg.Backups.Backups(ctx, t.Name, backupScan)
		if err != nil {
			return fmt.Errorf("backups of target %q: %w", t.Name, err)
		}
		for _, b := range bs {
			v.Backups = append(v.Backups, s.backupRow(b))
		}
	}
	s.render(w, r, http.StatusOK, "target", v)
	return nil
}

func (s *Server) backupRow(b poller.Backup) backupRow {
	loc := s.loc()
	badge, ok := backupBadges[b.State]
	if !ok {
		badge = present.Badge{Class: "warn", Text: present.OrNone(string(b.State))}
	}
	row := backupRow{
		Name: b.Name, State: string(b.State), Badge: badge,
		Snapshot: present.TimeIn(b.SnapshotTime, loc, present.ListLayout), SnapshotISO: present.ISOTime(b.SnapshotTime),
		Expires: present.TimeIn(b.ExpireTime, loc, present.ListLayout), ExpiresISO: present.ISOTime(b.ExpireTime),
		Documents: present.None, Bytes: present.None,
	}
	if b.State == poller.BackupReady {
		row.Documents, row.Bytes = present.Count(b.Documents), present.Bytes(b.Bytes)
	}
	return row
}

// targetFields is a target's configuration as its page lists it.
func targetFields(t poller.Target) []field {
	fs := []field{{"Project", t.Project}, {"Database", dbName(t.Database)}}
	if e := t.Export; e != nil {
		fs = append(fs, field{"Export to", present.OrNone(e.OutputURLPrefix)},
			field{"Kinds", present.Kinds(e.Kinds)}, field{"Namespaces", present.Namespaces(e.Namespaces)})
		if e.Consistent {
			fs = append(fs, field{"Consistent", "yes: one point in time"})
		}
		fs = append(fs, field{"Schedule", present.OrNone(t.Schedule)})
		if t.Every > 0 {
			fs = append(fs, field{"Expected every", period(t.Every)})
		}
	} else {
		fs = append(fs, field{"Export", "none: managed backups are only watched"})
	}
	if b := t.Backups; b != nil {
		fs = append(fs, field{"Managed backups", fmt.Sprintf("%s, a READY one at most %s old", b.Recurrence, period(b.Recurrence.Allowance()))})
		if b.Retention > 0 {
			fs = append(fs, field{"Retention at least", period(b.Retention)})
		}
	}
	if d := t.Drill; d != nil {
		fs = append(fs, field{"Restore drill", "every " + period(d.Every) + ": the latest verified export is imported into a scratch database and counted"})
	}
	if t.Channel != "" {
		fs = append(fs, field{"Slack channel", t.Channel})
	}
	return fs
}

// targetJSON is a target in /api/targets.
type targetJSON struct {
	Name     string `json:"name"`
	Project  string `json:"project"`
	Database string `json:"database"`
	// LastGood is its newest good backup, null when there is none.
	LastGood *lastGoodJSON `json:"lastGood"`
	// Age is LastGood's age in seconds, null without one.
	Age *int64 `json:"age"`
	// ExpectedEvery is how old LastGood may be, in seconds (0: no expectation).
	ExpectedEvery int64 `json:"expectedEvery"`
	// NextDue is when the next is due, null without an expectation or a LastGood.
	NextDue *string `json:"nextDue"`
	// Badge is ok, late, overdue, never or running.
	Badge string `json:"badge"`
	// Running is the name of an export under way, if any.
	Running string `json:"running,omitempty"`
	// Verification is its latest content verification, LastVerified the
	// latest that verified; both are left out without a verification store
	// or a verification.
	Verification *verificationJSON `json:"verification,omitempty"`
	LastVerified *verificationJSON `json:"lastVerified,omitempty"`
	// Drill is its latest restore drill, left out without a drill store
	// or a drill; DrillEvery its drill's period in seconds, left out
	// without one.
	Drill      *drillJSON `json:"drill,omitempty"`
	DrillEvery int64      `json:"drillEvery,omitempty"`
	// Alarms are the badges of what is wrong beside Badge: "NOT verified",
	// "drill failed at import", "drill overdue".
	Alarms []string `json:"alarms,omitempty"`
}

type lastGoodJSON struct {
	Kind string `json:"kind"` // export or backup
	Name string `json:"name"` // the operation or the backup
	At   string `json:"at"`   // its end, or its snapshot time
}

func (s *Server) apiTargets(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	now := time.Now()
	states, err := s.targetStates(r.Context(), recs, now)
	if err != nil {
		return err
	}
	out := make([]targetJSON, 0, len(states))
	for _, st := range states {
		t := st.Target
		j := targetJSON{Name: t.Name, Project: t.Project, Database: dbName(t.Database), ExpectedEvery: int64(st.Expected / time.Second), Badge: st.State}
		if l := st.Last; l != nil {
			j.LastGood = &lastGoodJSON{Kind: l.Kind, Name: l.Name, At: l.At.UTC().Format(time.RFC3339Nano)}
			age := int64(now.Sub(l.At) / time.Second)
			j.Age = &age
		}
		if due := st.nextDue(); !due.IsZero() {
			d := due.UTC().Format(time.RFC3339Nano)
			j.NextDue = &d
		}
		if st.Running != nil {
			j.Running = st.Running.Name
		}
		addChecks(&j, t, st.Checks)
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, struct {
		Targets []targetJSON `json:"targets"`
	}{out})
	return nil
}
