package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The bounds of a drill's steps.
const (
	// MaxDrillAttempts is how many times a step that failed in a way that
	// may pass (ErrTransient, a timeout) is tried before the drill fails.
	MaxDrillAttempts = 5
	// DrillCreateTimeout bounds the creation of a scratch database.
	DrillCreateTimeout = 30 * time.Minute
	// DrillLease is how long one advance of a drill holds it: a count of a
	// few hundred kinds, a delete, a report.
	DrillLease = 10 * time.Minute
	// drillStepTimeout bounds one call of a drill: a COUNT of a large kind
	// takes longer than a store step.
	drillStepTimeout = time.Minute
	// DrillSweepBudget bounds the drill work of one sweep: the steps begun
	// within it run to their own bounds, and the rest wait for the next
	// sweep. A count or a clear goes on kind by kind from where it stopped.
	DrillSweepBudget = 2 * time.Minute
)

// DrillDatabaseID is the id of the scratch database dsexport creates for a
// drill begun at began: "dsx-drill-20261202-095000-123". Ids are not reused:
// the Firestore Admin API keeps a deleted database's id for a while.
func DrillDatabaseID(began time.Time) string {
	return "dsx-drill-" + began.UTC().Format("20060102-150405-000")
}

// DrillID names a drill of target begun at began: two drills begun in the
// same second (by hand, one after the other) are told apart by the
// milliseconds.
func DrillID(target string, began time.Time) string {
	return target + "/" + began.UTC().Format("20060102T150405.000Z")
}

// ErrNoDrills is returned when the poller has no Drills or DrillStore.
var ErrNoDrills = errors.New("restore drills are not configured (no Admin API or store for them)")

// BeginDrill begins a restore drill of t when one is due: t has a drill
// spec, no drill under way, none begun within its Every (force: any time),
// and a verified export. It returns the drill begun, or the one that kept
// it from beginning and false. Without a verified export it begins none
// and returns ErrNoVerifiedExport.
func (p *Poller) BeginDrill(ctx context.Context, t Target, trigger Trigger, force bool) (Drill, bool, error) {
	if t.Drill == nil {
		return Drill{}, false, fmt.Errorf("target %q has no drill", t.Name)
	}
	if p.cfg.Drills == nil || p.cfg.DrillStore == nil || p.cfg.Verifications == nil || p.cfg.DrillCounter == nil {
		return Drill{}, false, ErrNoDrills
	}
	var st VerifiedState
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		st, err = p.cfg.Verifications.VerifiedState(ctx, t.Name)
		return err
	})
	if err != nil {
		return Drill{}, false, fmt.Errorf("drill %s: %w", t.Name, err)
	}
	if st.Good == nil {
		return Drill{}, false, fmt.Errorf("drill %s: %w", t.Name, ErrNoVerifiedExport)
	}
	now := p.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	spec := *t.Drill
	d := Drill{
		ID: DrillID(t.Name, now), Target: t.Name, Project: t.Project, Database: t.Database,
		Trigger: trigger, Began: now, Step: DrillChoose, Kinds: slices.Clone(spec.Kinds),
		ScratchProject: spec.Project, ScratchDatabase: spec.Database, Location: spec.Location,
		Timeout: spec.Timeout, Updated: now,
	}
	if d.Database == "" {
		d.Database = DefaultDatabase
	}
	if d.ScratchProject == "" {
		d.ScratchProject = t.Project
	}
	if d.ScratchDatabase == "" {
		d.ScratchDatabase, d.CreateScratch = DrillDatabaseID(now), true
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultDrillTimeout
	}
	var notBefore time.Time
	if !force {
		notBefore = now.Add(-spec.Every)
	}
	var got Drill
	var begun bool
	err = p.persist(ctx, func(ctx context.Context) error {
		var err error
		got, begun, err = p.cfg.DrillStore.BeginDrill(ctx, d, notBefore)
		return err
	})
	if err != nil {
		return Drill{}, false, fmt.Errorf("drill %s: begin: %w", t.Name, err)
	}
	if begun {
		p.cfg.Logger.InfoContext(ctx, "restore drill begun", "drill", got.ID, "scratch", got.ScratchProject+"/"+got.ScratchDatabase)
	}
	return got, begun, nil
}

// AdvanceDrill takes the drill's lease and goes through its steps as far as
// they go without waiting: a step that waits for an operation (the scratch
// database's creation, the import) leaves the drill for the next advance.
// Each step is recorded before the next, so a restart goes on where it
// stopped. A drill another advance holds is returned as it is.
func (p *Poller) AdvanceDrill(ctx context.Context, id string) (Drill, error) {
	if p.cfg.Drills == nil || p.cfg.DrillStore == nil || p.cfg.DrillCounter == nil {
		return Drill{}, ErrNoDrills
	}
	// A step once begun runs to its own bound, whatever ends ctx (a stop,
	// the sweep's budget): a call half made (an import started, its name
	// not recorded) would be made again by the next advance. ctx is looked
	// at between steps, and between the kinds of a count or a clear.
	work := context.WithoutCancel(ctx)
	holder := newHolder()
	var d Drill
	var ok bool
	err := p.persist(work, func(ctx context.Context) error {
		var err error
		d, ok, err = p.cfg.DrillStore.AcquireDrill(ctx, id, holder, p.cfg.Clock.Now(), DrillLease)
		return err
	})
	if err != nil || !ok || d.Finished() {
		return d, err
	}
	defer func() {
		err := p.persist(work, func(ctx context.Context) error { return p.cfg.DrillStore.ReleaseDrill(ctx, id, holder) })
		if err != nil {
			p.cfg.Logger.WarnContext(ctx, "drill lease not released; it expires by itself", "drill", id, "err", err)
		}
	}()
	for !d.Finished() {
		if ctx.Err() != nil {
			return d, ctx.Err()
		}
		next, wait := p.drillStep(ctx, work, d)
		next.Updated = p.cfg.Clock.Now()
		err := p.persist(work, func(ctx context.Context) error {
			return p.cfg.DrillStore.SaveDrill(ctx, next, holder, next.Updated)
		})
		if err != nil {
			// The step's effect (an import started, a report sent) is not
			// recorded: the lease keeps others off until it expires, and the
			// next advance finds the operation or sends again.
			return d, fmt.Errorf("drill %s: record step %s: %w", id, d.Step, err)
		}
		if next.Step != d.Step {
			p.cfg.Logger.InfoContext(ctx, "drill step done", "drill", id, "step", d.Step, "next", next.Step, "outcome", next.Outcome)
		}
		if p.cfg.OnDrill != nil {
			p.cfg.OnDrill(next)
		}
		d = next
		if wait {
			break
		}
		// The lease is taken again for the next step: a step may take most
		// of it (a count kind by kind, a clear).
		err = p.persist(work, func(ctx context.Context) error {
			var err error
			_, ok, err = p.cfg.DrillStore.AcquireDrill(ctx, id, holder, p.cfg.Clock.Now(), DrillLease)
			return err
		})
		if err != nil || !ok {
			return d, fmt.Errorf("drill %s: lease not renewed (ok %v): %w", id, ok, err)
		}
	}
	return d, nil
}

// drillStep does the step d is at and returns the drill after it; wait
// tells that the step waits for an operation (or a retry) and the drill is
// to be advanced later.
func (p *Poller) drillStep(stop, ctx context.Context, d Drill) (next Drill, wait bool) {
	now := p.cfg.Clock.Now()
	switch d.Step {
	case DrillChoose:
		return p.drillChoose(ctx, d, now), false
	case DrillCreate:
		return p.drillCreate(ctx, d, now)
	case DrillImport:
		return p.drillImport(ctx, d, now)
	case DrillCount:
		return p.drillCount(stop, ctx, d, now)
	case DrillCompare:
		return drillCompare(d, now), false
	case DrillDelete:
		return p.drillDelete(stop, ctx, d)
	case DrillReport:
		return p.drillReport(ctx, d, now)
	}
	return drillFail(d, d.Step, fmt.Errorf("unknown drill step %q", BoundText(string(d.Step), 64)), now), false
}

// drillFail ends d as failed at step: the scratch database is still
// deleted, and the failure reported.
func drillFail(d Drill, step DrillStep, err error, now time.Time) Drill {
	d.Outcome, d.FailedStep, d.Error, d.Ended = DrillFailed, step, BoundText(err.Error(), MaxErrorText), now
	d.Step, d.Attempts = DrillDelete, 0
	return d
}

// drillRetry is a step's failure that may pass: the step is tried again at
// the next advance, up to MaxDrillAttempts times.
func drillRetry(d Drill, err error, now time.Time) (Drill, bool) {
	d.Attempts++
	if d.Attempts >= MaxDrillAttempts {
		return drillFail(d, d.Step, fmt.Errorf("%w (after %d tries)", err, d.Attempts), now), false
	}
	d.Error = BoundText(err.Error(), MaxErrorText)
	return d, true
}

// mayPass tells whether a step's error may pass if tried again.
func mayPass(err error) bool {
	return errors.Is(err, ErrTransient) || errors.Is(err, context.DeadlineExceeded)
}

// moveTo moves d to step, the step before it done.
func moveTo(d Drill, step DrillStep) Drill {
	d.Step, d.Attempts, d.Error = step, 0, ""
	return d
}

func (p *Poller) drillContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(p.cfg.RequestTimeout, drillStepTimeout))
}

// drillChoose picks the latest verified export of the target and what the
// drill expects of it.
func (p *Poller) drillChoose(ctx context.Context, d Drill, now time.Time) Drill {
	var st VerifiedState
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		st, err = p.cfg.Verifications.VerifiedState(ctx, d.Target)
		return err
	})
	if err != nil {
		d, _ = drillRetry(d, err, now)
		return d
	}
	good := st.Good
	if good == nil {
		return drillFail(d, DrillChoose, ErrNoVerifiedExport, now)
	}
	d.Export, d.InputURL, d.ExportTime = good.Operation, good.OutputURL, good.ExportTime
	d.Expected = nil
	for _, k := range good.Content.Kinds {
		if k.Kind != CutKind && (len(d.Kinds) == 0 || slices.Contains(d.Kinds, k.Kind)) {
			d.Expected = append(d.Expected, k)
		}
	}
	if len(d.Expected) == 0 {
		return drillFail(d, DrillChoose, fmt.Errorf("the verified export %s holds none of the drill's kinds (%s)",
			good.Operation, strings.Join(d.Kinds, ", ")), now)
	}
	if len(d.Expected) > MaxStoredKinds {
		d.Expected = d.Expected[:MaxStoredKinds]
	}
	return moveTo(d, DrillCreate)
}

// drillCreate creates the scratch database and waits for it; an existing
// scratch database must hold none of the kinds the drill imports, or its
// counts would say nothing.
func (p *Poller) drillCreate(ctx context.Context, d Drill, now time.Time) (Drill, bool) {
	if !d.CreateScratch {
		for _, k := range d.Expected {
			cctx, cancel := p.drillContext(ctx)
			n, err := p.cfg.DrillCounter.Count(cctx, d.ScratchProject, d.ScratchDatabase, k.Namespace, k.Kind)
			cancel()
			if err != nil {
				if mayPass(err) {
					return drillRetry(d, err, now)
				}
				return drillFail(d, DrillCreate, fmt.Errorf("count the scratch database: %w", err), now), false
			}
			if n > 0 {
				return drillFail(d, DrillCreate, fmt.Errorf("the scratch database %s holds %d entities of kind %s%s already: a drill imports into an empty one",
					Scope(d.ScratchProject, d.ScratchDatabase), n, quoteKind(k.Kind), inNamespace(k.Namespace)), now), false
			}
		}
		return moveTo(d, DrillImport), false
	}
	var op Operation
	var err error
	cctx, cancel := p.drillContext(ctx)
	if d.CreateOp == "" && d.Location == "" {
		// In the source's location: a restore in a disaster would be made
		// there, and the export's bucket was checked against it.
		var info DatabaseInfo
		if info, err = p.cfg.Drills.Database(cctx, d.Project, d.Database); err == nil {
			d.Location = BoundText(info.Location, MaxLabel)
		}
		if err == nil && d.Location == "" {
			err = fmt.Errorf("the Admin API gave no location for %s", Scope(d.Project, d.Database))
		}
	}
	if err != nil {
		cancel()
		if mayPass(err) {
			return drillRetry(d, err, now)
		}
		return drillFail(d, DrillCreate, fmt.Errorf("read the source database's location (set drill.location to skip): %w", err), now), false
	}
	if d.CreateOp == "" {
		if d.CreateStart.IsZero() {
			d.CreateStart = now
		}
		op, err = p.cfg.Drills.CreateDatabase(cctx, d.ScratchProject, d.ScratchDatabase, d.Location)
		if err == nil {
			d.CreateOp = BoundText(op.Name, MaxName)
		}
	} else {
		op, err = p.cfg.Drills.Get(cctx, d.CreateOp)
	}
	cancel()
	switch {
	case err != nil && mayPass(err):
		return drillRetry(d, err, now)
	case err != nil:
		return drillFail(d, DrillCreate, fmt.Errorf("create the scratch database %s: %w", Scope(d.ScratchProject, d.ScratchDatabase), err), now), false
	case op.Done && (op.ErrorCode != 0 || op.ErrorMessage != ""):
		return drillFail(d, DrillCreate, fmt.Errorf("create the scratch database %s: %s", Scope(d.ScratchProject, d.ScratchDatabase), ErrorOf(op)), now), false
	case op.Done:
		return moveTo(d, DrillImport), false
	case now.Sub(d.CreateStart) > DrillCreateTimeout:
		return drillFail(d, DrillCreate, fmt.Errorf("the scratch database %s was not created within %s", Scope(d.ScratchProject, d.ScratchDatabase), DrillCreateTimeout), now), false
	}
	return d, true
}

// ErrorOf is an ended operation's error as one line: its code's name and
// message.
func ErrorOf(op Operation) string {
	if op.ErrorMessage == "" {
		return fmt.Sprintf("error code %d", op.ErrorCode)
	}
	return fmt.Sprintf("%s (code %d)", BoundText(op.ErrorMessage, MaxErrorText), op.ErrorCode)
}

// drillImport starts the import and follows it to its end, within the
// drill's Timeout.
func (p *Poller) drillImport(ctx context.Context, d Drill, now time.Time) (Drill, bool) {
	var op Operation
	var err error
	cctx, cancel := p.drillContext(ctx)
	if d.ImportOp == "" {
		if d.ImportStart.IsZero() {
			d.ImportStart = now
		}
		op, err = p.cfg.Drills.Import(cctx, ImportRequest{
			Project: d.ScratchProject, Database: d.ScratchDatabase, InputURL: d.InputURL,
			Kinds: d.Kinds, Trigger: d.Trigger,
		})
		if err == nil {
			d.ImportOp = BoundText(op.Name, MaxName)
		}
	} else {
		op, err = p.cfg.Drills.Get(cctx, d.ImportOp)
	}
	cancel()
	if err == nil {
		op = op.Bounded()
		d.ImportEntities, d.ImportBytes = op.EntitiesCompleted, op.BytesCompleted
		if !op.StartTime.IsZero() && d.CreateStart.IsZero() {
			d.ImportStart = op.StartTime
		}
	}
	switch {
	case err != nil && mayPass(err):
		return drillRetry(d, err, now)
	case err != nil:
		return drillFail(d, DrillImport, fmt.Errorf("import %s into %s: %w", d.InputURL, Scope(d.ScratchProject, d.ScratchDatabase), err), now), false
	case op.Done && (op.ErrorCode != 0 || op.ErrorMessage != ""):
		return drillFail(d, DrillImport, fmt.Errorf("import %s: %s", d.InputURL, ErrorOf(op)), now), false
	case op.Done:
		d.ImportEnd = op.EndTime
		if d.ImportEnd.IsZero() {
			d.ImportEnd = now
		}
		return moveTo(d, DrillCount), false
	case d.ImportOp == "":
		return drillFail(d, DrillImport, errors.New("the import answered a running operation without a name"), now), false
	case now.Sub(d.ImportStart) > d.Timeout:
		return drillFail(d, DrillImport, fmt.Errorf("the import %s is still running after %s (cancel it: gcloud datastore operations cancel %s)",
			d.ImportOp, d.Timeout, d.ImportOp), now), false
	}
	return d, true
}

// drillCount counts the scratch database's entities of each expected kind.
//
// It goes on from the kinds counted already, and stops between kinds when
// stop ends: the rest are counted at the next advance.
func (p *Poller) drillCount(stop, ctx context.Context, d Drill, now time.Time) (Drill, bool) {
	counted := d.Counted
	for _, k := range d.Expected[min(len(counted), len(d.Expected)):] {
		if stop.Err() != nil {
			d.Counted = counted
			return d, true
		}
		cctx, cancel := p.drillContext(ctx)
		n, err := p.cfg.DrillCounter.Count(cctx, d.ScratchProject, d.ScratchDatabase, k.Namespace, k.Kind)
		cancel()
		if err != nil {
			if mayPass(err) {
				return drillRetry(d, err, now)
			}
			return drillFail(d, DrillCount, fmt.Errorf("count kind %s%s in %s: %w", quoteKind(k.Kind), inNamespace(k.Namespace),
				Scope(d.ScratchProject, d.ScratchDatabase), err), now), false
		}
		counted = append(counted, KindCount{Namespace: k.Namespace, Kind: k.Kind, Entities: n})
	}
	d.Counted = counted
	return moveTo(d, DrillCompare), false
}

// drillCompare compares the counts with the export's verification.
func drillCompare(d Drill, now time.Time) Drill {
	d.Findings = CompareDrill(d.Expected, d.Counted)
	if len(d.Findings) > 0 {
		n := len(d.Findings)
		return drillFail(d, DrillCompare, fmt.Errorf("%d of %d kinds restored with other counts than the export's files hold", n, len(d.Expected)), now)
	}
	d.Outcome, d.Ended = DrillPassed, now
	return moveTo(d, DrillDelete)
}

// CompareDrill lists the kinds whose restored count is not the export's.
func CompareDrill(expected, counted []KindCount) []ContentFinding {
	var out []ContentFinding
	for _, want := range expected {
		var got int64
		for _, c := range counted {
			if c.Namespace == want.Namespace && c.Kind == want.Kind {
				got = c.Entities
				break
			}
		}
		if got == want.Entities {
			continue
		}
		out = append(out, ContentFinding{Rule: ContentDrillCount, Kind: want.Kind, Namespace: want.Namespace,
			Expected: want.Entities, Got: got,
			Text: fmt.Sprintf("Kind %s%s: the export's files hold %d entities; %d were restored.",
				quoteKind(want.Kind), inNamespace(want.Namespace), want.Entities, got)})
		if len(out) == MaxFindings {
			break
		}
	}
	return out
}

// drillDelete deletes the scratch database dsexport created, or empties an
// existing one of the kinds imported. A failure does not fail the drill:
// the report says what to delete by hand.
//
// Emptying an existing one goes kind by kind from where it stopped (a
// kind's Clear is bounded by half the lease, and takes the rest of a kind
// it did not finish again at the next advance), between kinds when stop
// ends.
func (p *Poller) drillDelete(stop, ctx context.Context, d Drill) (Drill, bool) {
	var err error
	switch {
	case d.CreateScratch && d.CreateOp != "":
		cctx, cancel := p.drillContext(ctx)
		err = p.cfg.Drills.DeleteDatabase(cctx, d.ScratchProject, d.ScratchDatabase)
		cancel()
	case !d.CreateScratch && d.ImportOp != "":
		for d.Cleared < len(d.Expected) {
			if stop.Err() != nil {
				return d, true
			}
			k := d.Expected[d.Cleared]
			cctx, cancel := context.WithTimeout(ctx, DrillLease/2)
			_, err = p.cfg.DrillCounter.Clear(cctx, d.ScratchProject, d.ScratchDatabase, k.Namespace, k.Kind)
			cancel()
			if err != nil {
				if mayPass(err) && d.Attempts+1 < MaxDrillAttempts {
					d.Attempts++
					return d, true
				}
				break
			}
			d.Cleared++
		}
	default:
		// Nothing was made: the drill failed before it wrote anything.
		return moveToKeep(d, DrillReport), false
	}
	if err != nil {
		d.DeleteError = BoundText(err.Error(), MaxErrorText)
	} else {
		d.Deleted, d.DeleteError = true, ""
	}
	return moveToKeep(d, DrillReport), false
}

// drillReport sends the drill's report once: the drill's lease is the
// claim, and the report is marked sent (Step done) in the save that
// follows. A failed send is tried again at the next advance.
func (p *Poller) drillReport(ctx context.Context, d Drill, now time.Time) (Drill, bool) {
	if p.cfg.Notifier == nil {
		d.ReportedAt = now
		return moveToKeep(d, DrillDone), false
	}
	nctx, cancel := p.stepContext(ctx)
	r := Report{Drill: &d, Operation: Operation{Project: d.Project, Database: d.Database, Target: d.Target}}
	err := p.cfg.Notifier.Notify(nctx, r)
	cancel()
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "drill report not delivered", "drill", d.ID, "err", err)
		d.Attempts++
		return d, true
	}
	d.ReportedAt = now
	return moveToKeep(d, DrillDone), false
}

// moveToKeep is moveTo keeping the drill's error, which is its failure's.
func moveToKeep(d Drill, step DrillStep) Drill {
	d.Step, d.Attempts = step, 0
	return d
}
