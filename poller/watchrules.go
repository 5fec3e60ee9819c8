package poller

import (
	"slices"
	"strings"
	"time"
)

// This file holds the rules of the backup watch as pure functions: what a
// listing of a database's backup schedules and backups raises, and what the
// watch remembers of it until the next sweep. WatchBackups (watch.go) reads
// the listing and the state, applies CheckBackups, and sends each notice
// once through a claim named by its key.

// StuckAfter is how long a managed backup may be CREATING before it is
// stuck. Google documents no duration; a backup copies the database's
// storage inside Google and takes minutes to a few hours even for large
// databases. A day is past any backup that is merely slow, and it is the
// period of a daily schedule: a backup still CREATING when the next one is
// due is not coming.
const StuckAfter = 24 * time.Hour

// MaxWatchNames bounds each list of names the watch keeps of a target
// (schedules, recorded backups, raised notices), so that its record stays
// far within Datastore's 1 MiB entity. A database has at most one daily and
// one weekly schedule, whose backups are kept at most 14 weeks: about 112
// backups, and as many notices.
const MaxWatchNames = 1000

// WatchState is what the backup watch remembers of one target between
// sweeps (store: one record per target).
type WatchState struct {
	Target string
	// Since is when dsexport first watched the target; zero before the
	// first watch. Without any READY backup, a missing one counts from it.
	Since time.Time
	// Schedules are the names of the schedules seen last, sorted: kept
	// while the database has none, so that the no-schedule alarm names the
	// episode (the schedules that vanished) and is raised once per episode.
	Schedules []string
	// NoScheduleSince is when the watch first saw the database without a
	// schedule, zero while it has one.
	NoScheduleSince time.Time
	// NewestReady is the newest READY backup ever seen (by snapshot time),
	// NewestReadyAt its snapshot time: a missing backup counts from it even
	// after it expired or while its location does not answer.
	NewestReady   string
	NewestReadyAt time.Time
	// Recorded are the READY backups recorded and, where reported, reported:
	// a READY backup not among them is new.
	Recorded []string
	// Raised are the keys of the alarms that hold and were sent, so that a
	// condition that lasts costs no store call per sweep. A key drops out
	// when its condition ends (its claim stays: raised once is once).
	Raised []string
	// FailingSince is when the Admin API first failed a listing of the
	// target's backups since the last listing that succeeded; zero while
	// the listings succeed.
	FailingSince time.Time
}

// First tells whether the target was never watched.
func (s WatchState) First() bool { return s.Since.IsZero() }

// Notice is a backup notice to send once: Key names it among the target's
// notices, so that a claim on it is taken once whichever sweep sends it.
type Notice struct {
	Key string
	BackupNotice
}

// settles tells whether the notice's delivery is what makes its backup
// known (NoticeReady, NoticeShrank): until it is delivered, the backup
// stays new and the notice is worked out again by the next sweep.
func (n Notice) settles() bool { return n.Kind == NoticeReady || n.Kind == NoticeShrank }

// Listing is what the Firestore Admin API told of a target's database in
// one sweep.
type Listing struct {
	Database  DatabaseInfo
	Schedules []BackupSchedule
	Backups   []Backup
	// Unreachable names the locations whose backups did not answer: their
	// backups may be missing from Backups. The API names a location by its
	// id or as projects/P/locations/ID.
	Unreachable []string
}

// Incomplete tells whether the database's own backups may be missing from
// l: its location (Database.Location) is among the unreachable ones, or
// its location is not known while some location is unreachable. A
// database's backups are kept in its location, so another location that
// does not answer hides none of them. An entry that was cut (" … [cut: ")
// may name any location, so it counts as the database's.
func (l Listing) Incomplete() bool {
	if len(l.Unreachable) == 0 {
		return false
	}
	loc := l.Database.Location
	if loc == "" {
		return true
	}
	for _, u := range l.Unreachable {
		if u == loc || strings.HasSuffix(u, "/locations/"+loc) || strings.Contains(u, "[cut: ") {
			return true
		}
	}
	return false
}

// WatchCheck is what CheckBackups decided.
type WatchCheck struct {
	// Notices are to be sent, each once (by its Key).
	Notices []Notice
	// Record are the backups to record: the new READY ones, and recorded
	// ones that are READY no more.
	Record []Backup
	// Next is the state to keep once the notices went out; Unsettled takes
	// back from it what a notice that did not go out needs again.
	Next WatchState
	// MissingUnknown is true when a missing backup would be raised but the
	// database's location did not answer (Listing.Incomplete): the backup
	// may be there, so it is not raised, only logged.
	MissingUnknown bool
}

// CheckBackups applies the watch's rules to what the API listed of t's
// database at now, given the state of the watch before:
//   - no schedule (or all deleted): once per episode, keyed by the schedules
//     that vanished ("never" when none was ever seen);
//   - missing: no READY backup newer than t.Backups.Recurrence.Allowance(),
//     counted from the newest READY backup ever seen, or from the first
//     watch; once per newest backup, never while the database's location
//     is unreachable (Listing.Incomplete);
//   - NOT_AVAILABLE, stuck CREATING for StuckAfter: once per backup;
//   - a schedule's retention shorter than t.Backups.Retention: once per
//     schedule and retention (a retention the API did not give is not
//     compared);
//   - shrank: a new READY backup holding more than shrinkWarn fewer
//     documents or bytes than the READY backup before it (0: never);
//   - ready: a new READY backup is recorded, and reported when
//     t.Backups.Report; on the first watch every READY backup is recorded
//     but only the newest is new, so that a database with many backups does
//     not flood the channel.
func CheckBackups(t Target, l Listing, state WatchState, now time.Time, shrinkWarn float64) WatchCheck {
	var w BackupWatch
	if t.Backups != nil {
		w = *t.Backups
	}
	next := state
	next.Target = t.Name
	next.FailingSince = time.Time{} // the listing succeeded
	if next.First() {
		next.Since = now
	}
	raised := setOf(state.Raised)
	var c WatchCheck
	var current []string // keys of the alarms whose condition holds
	alarm := func(key string, n BackupNotice) {
		current = append(current, key)
		if !raised[key] {
			n.Target, n.Project, n.Database = t.Name, t.Project, dbOf(t.Database)
			c.Notices = append(c.Notices, Notice{Key: key, BackupNotice: n})
		}
	}

	// Schedules.
	if len(l.Schedules) == 0 {
		if next.NoScheduleSince.IsZero() {
			next.NoScheduleSince = now
		}
		episode := "never"
		if len(state.Schedules) > 0 {
			episode = strings.Join(state.Schedules, ",")
		}
		alarm("no-schedule:"+episode, BackupNotice{Kind: NoticeNoSchedule, Since: next.NoScheduleSince})
	} else {
		names := make([]string, 0, len(l.Schedules))
		for _, s := range l.Schedules {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		next.Schedules = capNames(slices.Compact(names))
		next.NoScheduleSince = time.Time{}
	}
	if w.Retention > 0 {
		for _, s := range l.Schedules {
			// A schedule without a retention (0: the API gave none) is of a
			// retention unknown, not of none: compared, it would raise a
			// short retention of 0s that no schedule has.
			if s.Retention > 0 && s.Retention < w.Retention {
				alarm("retention:"+s.Name+":"+s.Retention.String(),
					BackupNotice{Kind: NoticeShortRetention, Schedule: s, Expected: w.Retention})
			}
		}
	}

	// Backups, oldest first; READY ones apart, for the shrink's previous.
	backups := slices.DeleteFunc(slices.Clone(l.Backups), func(b Backup) bool {
		// Another database's backup (the adapter filters by uid) must not
		// pass for one of this database's.
		return l.Database.UID != "" && b.DatabaseUID != "" && b.DatabaseUID != l.Database.UID
	})
	slices.SortStableFunc(backups, func(a, b Backup) int {
		if c := a.SnapshotTime.Compare(b.SnapshotTime); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var ready []Backup
	recorded := setOf(state.Recorded)
	for _, b := range backups {
		switch b.State {
		case BackupReady:
			ready = append(ready, b)
		case BackupNotAvailable:
			alarm("not-available:"+b.Name, BackupNotice{Kind: NoticeNotAvailable, Backup: b})
			if recorded[b.Name] {
				c.Record = append(c.Record, b)
			}
		case BackupCreating:
			if !b.SnapshotTime.IsZero() && now.Sub(b.SnapshotTime) >= StuckAfter {
				alarm("stuck:"+b.Name, BackupNotice{Kind: NoticeStuck, Backup: b, Expected: StuckAfter})
			}
		}
	}
	if n := len(ready); n > 0 && ready[n-1].Name != next.NewestReady && !ready[n-1].SnapshotTime.Before(next.NewestReadyAt) {
		next.NewestReady, next.NewestReadyAt = ready[n-1].Name, ready[n-1].SnapshotTime
	}

	// New READY backups: recorded, compared with the one before, reported.
	var readyNames []string
	for i, b := range ready {
		readyNames = append(readyNames, b.Name)
		if recorded[b.Name] {
			continue
		}
		c.Record = append(c.Record, b)
		if state.First() && i < len(ready)-1 {
			continue // known from before dsexport watched: recorded, not new
		}
		if i > 0 {
			if sh, ok := backupShrink(ready[i-1], b, shrinkWarn); ok {
				c.Notices = append(c.Notices, Notice{Key: "shrank:" + b.Name, BackupNotice: BackupNotice{
					Kind: NoticeShrank, Target: t.Name, Project: t.Project, Database: dbOf(t.Database),
					Backup: b, Previous: ready[i-1], Shrink: sh}})
			}
		}
		if w.Report {
			c.Notices = append(c.Notices, Notice{Key: "ready:" + b.Name, BackupNotice: BackupNotice{
				Kind: NoticeReady, Target: t.Name, Project: t.Project, Database: dbOf(t.Database), Backup: b}})
		}
	}
	incomplete := l.Incomplete()
	if incomplete {
		// Backups not listed may be in the location that did not answer:
		// what was recorded stays known.
		readyNames = append(readyNames, state.Recorded...)
	}
	slices.Sort(readyNames)
	next.Recorded = capNames(slices.Compact(readyNames))

	// Missing: counted from the newest READY backup ever seen.
	allowance := w.Recurrence.Allowance()
	since, newest := next.Since, Backup{}
	if !next.NewestReadyAt.IsZero() {
		since = next.NewestReadyAt
		newest = Backup{Name: next.NewestReady, SnapshotTime: next.NewestReadyAt}
		if n := len(ready); n > 0 && ready[n-1].Name == next.NewestReady {
			newest = ready[n-1]
		}
	}
	if now.Sub(since) >= allowance {
		if incomplete {
			c.MissingUnknown = true
			if raised["missing:"+orNone(newest.Name)] {
				current = append(current, "missing:"+orNone(newest.Name)) // raised already; it still holds
			}
		} else {
			alarm("missing:"+orNone(newest.Name), BackupNotice{Kind: NoticeMissing, Backup: newest, Expected: allowance, Since: since})
		}
	}

	slices.Sort(current)
	next.Raised = capNames(slices.Compact(current))
	c.Next = next
	return c
}

// WatchFailingKey is the key of the notice of a watch failing since since:
// one per stretch of failures.
func WatchFailingKey(since time.Time) string {
	return "watch-failing:" + since.UTC().Format(time.RFC3339Nano)
}

// CheckFailedWatch applies the watch's rule for a listing of t's backups
// that failed at now with failure: the failure counts from the first one
// since the last listing that succeeded (state.FailingSince, now when it
// is zero), and once it lasts t.Backups.Recurrence.Allowance(), which is
// as long as a missing backup may go unraised, a NoticeWatchFailing is
// raised, once per stretch of failures. The rest of the state is kept as
// it was: nothing was listed.
func CheckFailedWatch(t Target, state WatchState, now time.Time, failure error) WatchCheck {
	var w BackupWatch
	if t.Backups != nil {
		w = *t.Backups
	}
	next := state
	next.Target = t.Name
	if next.FailingSince.IsZero() {
		next.FailingSince = now
	}
	var c WatchCheck
	allowance := w.Recurrence.Allowance()
	if now.Sub(next.FailingSince) >= allowance {
		key := WatchFailingKey(next.FailingSince)
		if !slices.Contains(state.Raised, key) {
			text := "unknown failure"
			if failure != nil {
				text = failure.Error()
			}
			c.Notices = append(c.Notices, Notice{Key: key, BackupNotice: BackupNotice{
				Kind: NoticeWatchFailing, Target: t.Name, Project: t.Project, Database: dbOf(t.Database),
				Expected: allowance, Since: next.FailingSince, Error: BoundText(text, MaxErrorText)}})
			raised := append(slices.Clone(state.Raised), key)
			slices.Sort(raised)
			next.Raised = capNames(slices.Compact(raised))
		}
	}
	c.Next = next
	return c
}

// Unsettled is s without what notice n, which did not go out (its send
// failed, or another sweep's claim on it is live), would settle: the next
// sweep then works n out again, and sends it unless it went out meanwhile.
func (s WatchState) Unsettled(n Notice) WatchState {
	s.Raised = slices.DeleteFunc(slices.Clone(s.Raised), func(k string) bool { return k == n.Key })
	if n.settles() {
		s.Recorded = slices.DeleteFunc(slices.Clone(s.Recorded), func(name string) bool { return name == n.Backup.Name })
	}
	return s
}

// Equal tells whether two states hold the same: the watch writes its state
// only when it changed.
func (s WatchState) Equal(o WatchState) bool {
	return s.Target == o.Target && s.Since.Equal(o.Since) && slices.Equal(s.Schedules, o.Schedules) &&
		s.NoScheduleSince.Equal(o.NoScheduleSince) && s.NewestReady == o.NewestReady &&
		s.NewestReadyAt.Equal(o.NewestReadyAt) && slices.Equal(s.Recorded, o.Recorded) && slices.Equal(s.Raised, o.Raised) &&
		s.FailingSince.Equal(o.FailingSince)
}

// backupShrink is the fraction by which b holds fewer documents or bytes
// than prev (the larger of the two), when it is more than warn (0: never).
func backupShrink(prev, b Backup, warn float64) (float64, bool) {
	if warn <= 0 {
		return 0, false
	}
	shrink := max(fewer(prev.Documents, b.Documents), fewer(prev.Bytes, b.Bytes))
	return shrink, shrink > warn
}

// fewer is the fraction of before that now lacks; 0 when it is not fewer.
func fewer(before, now int64) float64 {
	if before <= 0 || now >= before {
		return 0
	}
	return float64(before-now) / float64(before)
}

// NoticeClaim is the store's record of one notice: who claims to send it,
// and whether it was sent.
type NoticeClaim struct {
	Target, Key string
	// Claimed is when Claimer claimed it; zero when nobody holds a claim.
	Claimed time.Time
	Claimer string
	// SentAt is when it was delivered; zero while it is not.
	SentAt time.Time
}

// Sent tells whether the notice was delivered.
func (c NoticeClaim) Sent() bool { return !c.SentAt.IsZero() }

// CanClaimNotice tells whether holder may claim the notice at at, as
// CanClaimReport does a report: not sent, and no claim of another holder
// younger than ttl; holder's own claim is its own again (a retry of a claim
// that committed but answered late), and an older one belongs to a sweep
// that died while sending.
func CanClaimNotice(c NoticeClaim, holder string, at time.Time, ttl time.Duration) bool {
	if c.Sent() {
		return false
	}
	return c.Claimed.IsZero() || (holder != "" && c.Claimer == holder) || !at.Before(c.Claimed.Add(ttl))
}

// Bounded returns b with its strings within the bounds of bounds.go: a
// name is a Datastore key name, the rest labels.
func (b Backup) Bounded() Backup {
	b.Name = BoundText(b.Name, MaxName)
	b.Database = BoundText(b.Database, MaxName)
	b.DatabaseUID = BoundText(b.DatabaseUID, MaxDatabaseUID)
	b.State = BackupState(BoundText(string(b.State), MaxLabel))
	return b
}

// Bounded returns s with its strings within bounds.
func (s BackupSchedule) Bounded() BackupSchedule {
	s.Name = BoundText(s.Name, MaxName)
	s.Recurrence = Recurrence(BoundText(string(s.Recurrence), MaxLabel))
	s.Weekday = BoundText(s.Weekday, MaxLabel)
	return s
}

func orNone(name string) string {
	if name == "" {
		return "none"
	}
	return name
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// capNames keeps at most MaxWatchNames of sorted names (the last ones).
func capNames(names []string) []string {
	if len(names) > MaxWatchNames {
		names = names[len(names)-MaxWatchNames:]
	}
	if len(names) == 0 {
		return nil
	}
	return names
}
