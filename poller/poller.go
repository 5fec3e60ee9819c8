package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// Config holds the poller's dependencies and its schedule.
type Config struct {
	Admin    Admin
	Store    Store
	Notifier Notifier
	// Dispatcher hands operations to a poller: the first poll of a start,
	// the continuation of a poll whose Budget was spent, the sweep's
	// resumes. Nil: nobody follows a started export but a caller that
	// calls Poll itself (dsexport export --wait).
	Dispatcher Dispatcher
	// Budget bounds the work of one Poll call (0: none); the operation then
	// goes on in a continuation dispatched before Poll returns. Without a
	// Dispatcher there is no continuation, and Budget is ignored.
	Budget time.Duration
	Clock  Clock
	Logger *slog.Logger
	// Interval is the wait before each GET of the Fixed schedule, and with
	// MaxPolls the wall-clock budget of any schedule: an operation is
	// polled for at most MaxPolls × Interval from when it was recorded.
	Interval time.Duration
	// Schedule decides each wait; nil means Fixed{Interval}.
	Schedule Schedule
	// MaxPolls bounds the GETs of one operation, across restarts.
	MaxPolls int
	// RequestTimeout bounds each step of a poll: the GET, the store writes,
	// the report. A stop waits for the step under way, so it is kept short.
	// Zero means 5s.
	RequestTimeout time.Duration
	// StorePatience is how long a store step is retried while the store
	// fails or answers late (an outage, lock waits) before the poller gives
	// the step up; zero means half the LeaseTTL, at least three
	// RequestTimeouts and at most two minutes, so that a poller keeps its
	// lease through the wait.
	StorePatience time.Duration
	// ClaimTTL is how long a claim on a report keeps other pollers from
	// sending it; zero means StorePatience and three RequestTimeouts, at
	// least a minute. It must outlast one send and the marking after it.
	ClaimTTL time.Duration
	// LeaseTTL is how long a poller's lease on an operation lasts unless
	// renewed; it is renewed at every poll. Zero means twice the schedule's
	// longest wait and a minute, so that a live poller never loses it
	// between two polls.
	LeaseTTL time.Duration
	// ShrinkWarn is the fraction (0.1 for 10%) by which a success may hold
	// fewer entities than the previous success before its report warns.
	ShrinkWarn float64
	// StaleAfter raises the staleness alarm when no export of the project
	// succeeded for this long; zero never raises it.
	StaleAfter time.Duration
	// CronWindow makes a cron start within it of the previous cron start of
	// the same filter a retry of that one (App Engine retries cron).
	CronWindow time.Duration
	// StartsPerMinute caps the export starts of a project (the Admin API
	// takes 20 a minute); zero means no cap.
	StartsPerMinute int
	// StopGrace bounds all the work a poll does after it was told to stop;
	// zero means 6s: with the 3 s a store commit waiting on a lock may take past
	// its deadline (store.commitGrace), inside the 10s App Engine and Cloud
	// Run allow.
	StopGrace time.Duration
	// Progress, when set, follows each export in one message: posted at the
	// start, updated at most every ProgressEvery (zero: a minute), turned
	// into the final report at the end.
	Progress      ProgressNotifier
	ProgressEvery time.Duration
	// OnPoll, when set, is called with the record after each poll (the
	// CLI draws its progress from it).
	OnPoll func(Record)
	// SweepRound is how long one round of the sweep's resumes lasts: within
	// it, sweeps hand an orphan over under the same task name, so they do
	// not pile up tasks; the next round hands it over anew. Zero means 10
	// minutes, cron's sweep period.
	SweepRound time.Duration
	// Backups, when set, is the Firestore Admin API the sweep watches the
	// managed backups of each target with Backups through (WatchBackups);
	// BackupStore keeps what the watch knows, the Store when nil and it
	// is one.
	Backups     BackupsAdmin
	BackupStore BackupStore
	// Content, when set, reads the files of each successful export before
	// its report (verify): the report then says what they hold, and an
	// empty export, an unreadable one or a kind gone since the previous
	// export of the target raise an alarm. ContentTimeout bounds the check
	// (zero: DefaultContentTimeout); SourceCounter, when set, counts each
	// kind in the source database too; Verifications keeps each target's
	// checks (the Store when nil and it is one).
	Content        ContentReader
	ContentTimeout time.Duration
	SourceCounter  Counter
	Verifications  VerificationStore
	// Drills, when set, are the Admin APIs a target's restore drill goes
	// through; DrillCounter counts (and clears) the scratch database, and
	// DrillStore keeps the drills (the Store when nil and it is one).
	Drills       DrillAdmin
	DrillCounter ScratchCounter
	DrillStore   DrillStore
	// OnDrill, when set, is called with the drill after each of its steps
	// is recorded (dsexport drill draws its progress from it).
	OnDrill func(Drill)
}

// Poller starts exports, follows them to their end and reports each once.
type Poller struct {
	cfg     Config
	holders holders
}

// New returns a Poller; Clock and Logger default to the system clock and slog's default.
func New(cfg Config) *Poller {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Schedule == nil {
		cfg.Schedule = Fixed{Every: cfg.Interval}
	}
	if cfg.SweepRound <= 0 {
		cfg.SweepRound = 10 * time.Minute
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Minute
	}
	if cfg.Dispatcher == nil {
		// A budget hands over to a continuation; with nobody to hand over
		// to, the caller that polls (dsexport export --wait) polls to the end.
		cfg.Budget = 0
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 6 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 2*max(cfg.Schedule.Longest(), cfg.Interval) + time.Minute
	}
	if cfg.StorePatience <= 0 {
		cfg.StorePatience = min(max(cfg.LeaseTTL/2, 3*cfg.RequestTimeout), 2*time.Minute)
	}
	if cfg.ContentTimeout <= 0 {
		cfg.ContentTimeout = DefaultContentTimeout
	}
	if cfg.ClaimTTL <= 0 {
		// The claim outlasts the send and the retries of the mark that
		// follows it (markPatience), and the content check before the
		// send: its read and its two store steps.
		cfg.ClaimTTL = max(time.Minute, cfg.StorePatience+3*cfg.RequestTimeout)
		if cfg.Content != nil {
			cfg.ClaimTTL += cfg.ContentTimeout + 2*cfg.StorePatience
		}
	}
	if bs, ok := cfg.Store.(BackupStore); ok && cfg.BackupStore == nil {
		cfg.BackupStore = bs
	}
	if vs, ok := cfg.Store.(VerificationStore); ok && cfg.Verifications == nil {
		cfg.Verifications = vs
	}
	if ds, ok := cfg.Store.(DrillStore); ok && cfg.DrillStore == nil {
		cfg.DrillStore = ds
	}
	p := &Poller{cfg: cfg}
	if in, ok := cfg.Dispatcher.(*Inline); ok {
		in.p = p
	}
	return p
}

// wall is the wall-clock budget of an operation from when it was recorded:
// the fixed schedule's MaxPolls × Interval, for a schedule whose waits
// differ from Interval; 0 (none) for the fixed schedule, whose MaxPolls
// GETs are that budget already.
func (p *Poller) wall() time.Duration {
	if _, fixed := p.cfg.Schedule.(Fixed); fixed {
		return 0
	}
	return time.Duration(p.cfg.MaxPolls) * p.cfg.Interval
}

// stepContext bounds one step of a poll (a GET, a store write, a post).
func (p *Poller) stepContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.cfg.RequestTimeout)
}

// newHolder names one Poll call as a lease holder.
func newHolder() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// localName names an operation the API returned without one (kind "local")
// or a start it refused (kind "refused").
func localName(project, database, kind string, now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s%s-%s-%s", operationsOf(project, database), kind, now.UTC().Format("20060102T150405Z"), hex.EncodeToString(b[:]))
}
