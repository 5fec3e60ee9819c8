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
	// A call once made runs to its own bound (drillStepTimeout), whatever
	// ends ctx (a stop, the sweep's budget); ctx is looked at between
	// steps, and between the kinds of a count or a clear. A call cut
	// anyway (the process killed) is safe: a creation is asked for again
	// (ALREADY_EXISTS is the drill's own), and an import whose start was
	// not recorded is never asked for again (drillImport).
	r := &drillRun{p: p, stop: ctx, work: context.WithoutCancel(ctx), id: id, holder: newHolder(), requested: map[DrillStep]bool{}}
	d, ok, err := r.acquire()
	if err != nil || !ok || d.Finished() {
		return d, err
	}
	release := true
	defer func() {
		if !release {
			return
		}
		err := p.persist(r.work, func(ctx context.Context) error { return p.cfg.DrillStore.ReleaseDrill(ctx, id, r.holder) })
		if err != nil {
			p.cfg.Logger.WarnContext(ctx, "drill lease not released; it expires by itself", "drill", id, "err", err)
		}
	}()
	for !d.Finished() {
		if ctx.Err() != nil {
			return d, ctx.Err()
		}
		next, wait := r.step(d)
		next.Updated = p.cfg.Clock.Now()
		err := p.persist(r.work, func(ctx context.Context) error {
			return p.cfg.DrillStore.SaveDrill(ctx, next, r.holder, next.Updated)
		})
		if err != nil {
			// The step's effect (a report sent, an operation's name) is not
			// recorded: the lease is kept until it expires, as a report's
			// claim is, so that no other advance acts on the drill as it
			// was meanwhile.
			release = false
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
		// The lease is taken again for the next step.
		if !r.renew() {
			return d, fmt.Errorf("drill %s: %w", id, ErrLeaseLost)
		}
	}
	return d, nil
}

// drillRun is one advance of a drill: its stop (looked at between steps
// and kinds), the context of its calls, its lease, and the calls it asked
// for itself (requested: an import is asked for only by the advance that
// recorded that it would be).
type drillRun struct {
	p          *Poller
	stop, work context.Context
	id, holder string
	requested  map[DrillStep]bool
}

func (r *drillRun) acquire() (Drill, bool, error) {
	var d Drill
	var ok bool
	err := r.p.persist(r.work, func(ctx context.Context) error {
		var err error
		d, ok, err = r.p.cfg.DrillStore.AcquireDrill(ctx, r.id, r.holder, r.p.cfg.Clock.Now(), DrillLease)
		return err
	})
	return d, ok, err
}

// renew takes the lease again, from now; false when it is lost (or the
// store did not answer: the work stops either way).
func (r *drillRun) renew() bool {
	_, ok, err := r.acquire()
	if err != nil {
		r.p.cfg.Logger.WarnContext(r.stop, "drill lease not renewed; stopping", "drill", r.id, "err", err)
	}
	return err == nil && ok
}

// call is the context of one call of a drill.
func (r *drillRun) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.work, max(r.p.cfg.RequestTimeout, drillStepTimeout))
}

// step does the step d is at and returns the drill after it; wait tells
// that the step waits for an operation (or a retry) and the drill is to be
// advanced later.
func (r *drillRun) step(d Drill) (next Drill, wait bool) {
	p, now := r.p, r.p.cfg.Clock.Now()
	switch d.Step {
	case DrillChoose:
		return p.drillChoose(r.work, d, now), false
	case DrillCreate:
		return r.create(d, now)
	case DrillImport:
		return r.importStep(d, now)
	case DrillCount:
		return r.count(d, now)
	case DrillCompare:
		return drillCompare(d, now), false
	case DrillDelete:
		return r.delete(d, now)
	case DrillReport:
		return p.drillReport(r.work, d, now)
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

// drillCreate creates the scratch database and waits for it. The creation
// is recorded as asked for before it is asked for, so that the scratch
// database is deleted whatever happens next; asking again is safe (a
// store write lost, a call cut): the database's id is the drill's alone,
// and ALREADY_EXISTS says it was made. An existing scratch database must
// hold no entity at all, or what the import writes over and what it leaves
// could not be told apart from what was there.
func (r *drillRun) create(d Drill, now time.Time) (Drill, bool) {
	p := r.p
	scratch := Scope(d.ScratchProject, d.ScratchDatabase)
	if !d.CreateScratch {
		cctx, cancel := r.call()
		kinds, err := p.cfg.DrillCounter.Kinds(cctx, d.ScratchProject, d.ScratchDatabase)
		cancel()
		switch {
		case err != nil && mayPass(err):
			return drillRetry(d, err, now)
		case err != nil:
			return drillFail(d, DrillCreate, fmt.Errorf("list the kinds of the scratch database %s: %w", scratch, err), now), false
		case len(kinds) > 0:
			return drillFail(d, DrillCreate, fmt.Errorf("the scratch database %s holds entities already (%s): a drill imports into an empty database",
				scratch, kindNames(kinds, 5)), now), false
		}
		return moveTo(d, DrillImport), false
	}
	if d.CreateOp == "" && d.Location == "" {
		// In the source's location: a restore in a disaster would be made
		// there, and the export's bucket was checked against it.
		cctx, cancel := r.call()
		info, err := p.cfg.Drills.Database(cctx, d.Project, d.Database)
		cancel()
		if err == nil && info.Location == "" {
			err = fmt.Errorf("the Admin API gave no location for %s", Scope(d.Project, d.Database))
		}
		if err != nil {
			if mayPass(err) {
				return drillRetry(d, err, now)
			}
			return drillFail(d, DrillCreate, fmt.Errorf("read the source database's location (set drill.location to skip): %w", err), now), false
		}
		d.Location = BoundText(info.Location, MaxLabel)
	}
	if d.CreateRequested.IsZero() {
		d.CreateRequested, d.CreateStart = now, now
		return d, false
	}
	var op Operation
	var err error
	cctx, cancel := r.call()
	if d.CreateOp == "" {
		op, err = p.cfg.Drills.CreateDatabase(cctx, d.ScratchProject, d.ScratchDatabase, d.Location)
		if err == nil {
			d.CreateOp = BoundText(op.Name, MaxName)
		} else if refusalCode(err) == codeAlreadyExists {
			// Made by an earlier ask of this drill's whose answer was lost.
			_, err = p.cfg.Drills.Database(cctx, d.ScratchProject, d.ScratchDatabase)
			op = Operation{Done: err == nil}
		}
	} else {
		op, err = p.cfg.Drills.Get(cctx, d.CreateOp)
	}
	cancel()
	switch {
	case err != nil && (mayPass(err) || mayPassRefusal(err)):
		return drillRetry(d, err, now)
	case err != nil:
		return drillFail(d, DrillCreate, fmt.Errorf("create the scratch database %s: %w", scratch, err), now), false
	case op.Done && (op.ErrorCode != 0 || op.ErrorMessage != ""):
		return drillFail(d, DrillCreate, fmt.Errorf("create the scratch database %s: %s", scratch, ErrorOf(op)), now), false
	case op.Done:
		return moveTo(d, DrillImport), false
	case now.Sub(d.CreateStart) > DrillCreateTimeout:
		return drillFail(d, DrillCreate, fmt.Errorf("the scratch database %s was not created within %s", scratch, DrillCreateTimeout), now), false
	}
	return d, true
}

// The google.rpc codes a drill tells apart.
const (
	codeDeadlineExceeded  = 4
	codeAlreadyExists     = 6
	codeResourceExhausted = 8
	codeAborted           = 10
	codeInternal          = 13
	codeUnavailable       = 14
)

// mayPassRefusal tells whether an Admin API refusal may pass if asked
// again: for a call that is safe to ask again (a creation), these are
// tried again rather than failing the drill.
func mayPassRefusal(err error) bool {
	var re *RefusedError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Code {
	case codeDeadlineExceeded, codeResourceExhausted, codeAborted, codeInternal, codeUnavailable:
		return true
	}
	return false
}

// kindNames lists at most n kinds, "Order, User in eu, … (12 in all)".
func kindNames(kinds []KindCount, n int) string {
	var parts []string
	for i, k := range kinds {
		if i == n {
			parts = append(parts, fmt.Sprintf("… (%d in all)", len(kinds)))
			break
		}
		parts = append(parts, quoteKind(k.Kind)+inNamespace(k.Namespace))
	}
	return strings.Join(parts, ", ")
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
// drill's Timeout. An import is asked for once: it is recorded as asked
// for first, and only the advance that recorded it asks. One recorded as
// asked for whose operation was not recorded (a store write lost after the
// call, a call cut or timed out) may be running, and is not asked for
// again: a second import of the export would be billed again, and into an
// existing scratch database would write over the first. The drill fails
// saying so.
func (r *drillRun) importStep(d Drill, now time.Time) (Drill, bool) {
	p := r.p
	scratch := Scope(d.ScratchProject, d.ScratchDatabase)
	if d.ImportOp == "" {
		if d.ImportRequested.IsZero() {
			d.ImportRequested = now
			if d.ImportStart.IsZero() {
				d.ImportStart = now
			}
			r.requested[DrillImport] = true
			return d, false
		}
		if !r.requested[DrillImport] {
			d.ImportLeftRunning = true
			return drillFail(d, DrillImport, fmt.Errorf("the import into %s was asked for at %s, and its operation was not recorded: it may be running, and is not asked for again (look for it: %s)",
				scratch, d.ImportRequested.UTC().Format(time.RFC3339), listOperations(d)), now), false
		}
		cctx, cancel := r.call()
		op, err := p.cfg.Drills.Import(cctx, ImportRequest{
			Project: d.ScratchProject, Database: d.ScratchDatabase, InputURL: d.InputURL,
			Kinds: d.Kinds, Trigger: d.Trigger,
		})
		cancel()
		if err != nil {
			if mayPass(err) || mayPassRefusal(err) {
				// The API may have taken it: not asked for again.
				d.ImportLeftRunning = true
				return drillFail(d, DrillImport, fmt.Errorf("import %s into %s: %w (it may have started: look for it: %s)", d.InputURL, scratch, err, listOperations(d)), now), false
			}
			return drillFail(d, DrillImport, fmt.Errorf("import %s into %s: %w", d.InputURL, scratch, err), now), false
		}
		d.ImportOp = BoundText(op.Name, MaxName)
		return r.imported(d, op, now)
	}
	cctx, cancel := r.call()
	op, err := p.cfg.Drills.Get(cctx, d.ImportOp)
	cancel()
	switch {
	case err != nil && mayPass(err):
		return drillRetry(d, err, now)
	case err != nil:
		d.ImportLeftRunning = !errors.Is(err, ErrOperationGone)
		return drillFail(d, DrillImport, fmt.Errorf("read the import %s: %w", d.ImportOp, err), now), false
	}
	return r.imported(d, op, now)
}

// imported is d after a reading of its import operation.
func (r *drillRun) imported(d Drill, op Operation, now time.Time) (Drill, bool) {
	op = op.Bounded()
	d.ImportEntities, d.ImportBytes = op.EntitiesCompleted, op.BytesCompleted
	if !op.StartTime.IsZero() && d.CreateStart.IsZero() {
		d.ImportStart = op.StartTime
	}
	switch {
	case op.Done && (op.ErrorCode != 0 || op.ErrorMessage != ""):
		return drillFail(d, DrillImport, fmt.Errorf("import %s: %s", d.InputURL, ErrorOf(op)), now), false
	case op.Done:
		d.ImportEnd = op.EndTime
		if d.ImportEnd.IsZero() {
			d.ImportEnd = now
		}
		return moveTo(d, DrillCount), false
	case d.ImportOp == "":
		d.ImportLeftRunning = true
		return drillFail(d, DrillImport, errors.New("the import answered a running operation without a name"), now), false
	case now.Sub(d.ImportStart) > d.Timeout:
		d.ImportLeftRunning = true
		return drillFail(d, DrillImport, fmt.Errorf("the import %s is still running after %s (cancel it: %s)",
			d.ImportOp, d.Timeout, cancelCommand(d.ImportOp)), now), false
	}
	return d, true
}

// listOperations is the command that lists the scratch database's
// operations, where an import whose name was lost shows.
func listOperations(d Drill) string {
	if IsDefaultDatabase(d.ScratchDatabase) {
		return "gcloud datastore operations list --project=" + d.ScratchProject
	}
	return "gcloud firestore operations list --project=" + d.ScratchProject + " --database=" + d.ScratchDatabase
}

// cancelCommand cancels the operation name.
func cancelCommand(name string) string {
	if IsFirestoreName(name) {
		return "gcloud firestore operations cancel " + name
	}
	return "gcloud datastore operations cancel " + name
}

// drillCount counts the scratch database's entities of each expected kind.
//
// It goes on from the kinds counted already, and stops between kinds when
// stop ends: the rest are counted at the next advance.
func (r *drillRun) count(d Drill, now time.Time) (Drill, bool) {
	p := r.p
	counted := d.Counted
	for i, k := range d.Expected[min(len(counted), len(d.Expected)):] {
		// Between kinds: a stop, and the lease taken again, as a count of
		// many kinds may outlast it.
		if r.stop.Err() != nil || (i > 0 && !r.renew()) {
			d.Counted = counted
			return d, true
		}
		cctx, cancel := r.call()
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

// drillDelete deletes the scratch database dsexport created (whenever its
// creation was asked for: one already gone is no error), or empties an
// existing one of every kind in it, a minute's clear at a time, from where
// it stopped. A failure does not fail the drill: the report says what to
// delete by hand. An import that may still be running is not cleared
// after: it would write again what was cleared, and the report says to
// cancel it first.
func (r *drillRun) delete(d Drill, now time.Time) (Drill, bool) {
	p := r.p
	var err error
	switch {
	case d.CreateScratch && !d.CreateRequested.IsZero():
		cctx, cancel := r.call()
		err = p.cfg.Drills.DeleteDatabase(cctx, d.ScratchProject, d.ScratchDatabase)
		cancel()
	case !d.CreateScratch && d.ImportLeftRunning:
		what := "the import may still be running"
		if d.ImportOp != "" {
			what += " (cancel it: " + cancelCommand(d.ImportOp) + ")"
		}
		err = fmt.Errorf("the scratch database was not emptied: %s; then delete what it wrote", what)
	case !d.CreateScratch && !d.ImportRequested.IsZero():
		// A kind listed whose clear deleted nothing is not cleared again
		// (the metadata may lag behind the deletes): the loop ends.
		stuck := map[KindCount]bool{}
		for {
			if r.stop.Err() != nil || !r.renew() {
				return d, true
			}
			cctx, cancel := r.call()
			kinds, kerr := p.cfg.DrillCounter.Kinds(cctx, d.ScratchProject, d.ScratchDatabase)
			cancel()
			if err = kerr; err != nil {
				break
			}
			kinds = slices.DeleteFunc(kinds, func(k KindCount) bool { return stuck[KindCount{Namespace: k.Namespace, Kind: k.Kind}] })
			if len(kinds) == 0 {
				if len(stuck) > 0 {
					left := make([]KindCount, 0, len(stuck))
					for k := range stuck {
						left = append(left, k)
					}
					err = fmt.Errorf("the scratch database still lists %s, which a clear found nothing of", kindNames(left, 5))
				}
				break
			}
			k := KindCount{Namespace: kinds[0].Namespace, Kind: kinds[0].Kind}
			cctx, cancel = r.call()
			before, _ := p.cfg.DrillCounter.Count(cctx, d.ScratchProject, d.ScratchDatabase, k.Namespace, k.Kind)
			n, cerr := p.cfg.DrillCounter.Clear(cctx, d.ScratchProject, d.ScratchDatabase, k.Namespace, k.Kind)
			after, aerr := p.cfg.DrillCounter.Count(cctx, d.ScratchProject, d.ScratchDatabase, k.Namespace, k.Kind)
			cancel()
			switch {
			case cerr != nil && n == 0 && mayPass(cerr) && d.Attempts+1 < MaxDrillAttempts:
				d.Attempts++
				return d, true
			case cerr != nil && n == 0:
				err = cerr
			case aerr != nil || after >= before:
				// Nothing went: deletes that do not take (the Datastore
				// emulator's import keeps another database's keys) must
				// not loop.
				stuck[k] = true
				continue
			default:
				// Deleted some (a clear cut by its minute too): the rest next round.
				continue
			}
			break
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
