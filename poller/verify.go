package poller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultContentTimeout bounds the content check of an export when
// Config.ContentTimeout does not: the read of its files and the source's
// counts. An export too large to read within it is reported not verified,
// which is no alarm.
const DefaultContentTimeout = 3 * time.Minute

// verify checks the files of the successful export rec (Config.Content)
// and records the check for its target, before its report: the report
// says what the files hold. It is nil when no ContentReader is set.
//
// A verification recorded for rec already (a report that failed after it,
// a restart) is reused, not read again. A stop while the files are read
// leaves the check to the next poller (the error wraps ErrReportPending);
// the check's own time bound is not a failure but a verification that
// says it timed out.
func (p *Poller) verify(ctx context.Context, rec Record) (*Verification, error) {
	if p.cfg.Content == nil || rec.Outcome != OutcomeSuccess || rec.OutputURL == "" {
		return nil, nil
	}
	log := p.cfg.Logger.With("operation", rec.Name)
	var st VerifiedState
	if vs := p.cfg.Verifications; vs != nil {
		err := p.persist(ctx, func(ctx context.Context) error {
			var err error
			st, err = vs.VerifiedState(ctx, rec.Target)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("verify %s: read the target's verifications: %w", rec.Name, err)
		}
		var done *Verification
		err = p.persist(ctx, func(ctx context.Context) error {
			var err error
			done, err = vs.VerificationOf(ctx, rec.Name)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("verify %s: read its verification: %w", rec.Name, err)
		}
		if done != nil {
			return done, nil
		}
	}
	v := p.check(ctx, rec, previousContent(st, rec.Name))
	if ctx.Err() != nil {
		if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			// Stopped while reading: what was read says nothing, and the
			// next poller checks again.
			return nil, fmt.Errorf("verify %s: %w: stopped while reading its files: %w", rec.Name, ErrReportPending, ctx.Err())
		}
		// The caller's deadline (a sweep's) came first. It is recorded as
		// the check's time bound, which no alarm comes of, or a report whose
		// files take longer to read than a sweep lasts would never go out:
		// the next try reports it at once. This request has no time left
		// to send it.
		v.TimedOut, v.Findings = true, nil
		if !strings.Contains(v.Error, "took longer") {
			v.Error = "reading the files took longer than the request that checked them allowed: " + BoundText(v.Error, MaxErrorText)
		}
		if vs := p.cfg.Verifications; vs != nil {
			err := p.mustWrite(ctx, func(ctx context.Context) error { return vs.RecordVerification(ctx, v, p.cfg.Clock.Now()) })
			if err != nil {
				return nil, fmt.Errorf("verify %s: record the verification: %w", rec.Name, err)
			}
		}
		return nil, fmt.Errorf("verify %s: %w: the request's deadline came while its files were read: %w", rec.Name, ErrReportPending, ctx.Err())
	}
	if vs := p.cfg.Verifications; vs != nil {
		err := p.persist(ctx, func(ctx context.Context) error {
			return vs.RecordVerification(ctx, v, p.cfg.Clock.Now())
		})
		if err != nil {
			return nil, fmt.Errorf("verify %s: record the verification: %w", rec.Name, err)
		}
	}
	switch {
	case v.Alarm():
		log.ErrorContext(ctx, "export NOT verified", "error", v.Error, "findings", len(v.Findings))
	case v.TimedOut:
		log.WarnContext(ctx, "export not verified in time", "error", v.Error)
	default:
		log.InfoContext(ctx, "export verified", "entities", v.Content.Entities, "kinds", v.Content.KindNames(),
			"files", v.Content.Files, "bytes", v.Content.Bytes, "findings", len(v.Findings))
	}
	return &v, nil
}

// CheckExport reads the files of the successful export rec and compares
// them as the check before its report does (with the target's latest
// verified export, and the source's counts when a SourceCounter is set),
// without recording anything: dsexport verify runs it by hand.
func (p *Poller) CheckExport(ctx context.Context, rec Record) (Verification, error) {
	if p.cfg.Content == nil {
		return Verification{}, errors.New("no content reader is configured")
	}
	if rec.Outcome != OutcomeSuccess || rec.OutputURL == "" {
		return Verification{}, fmt.Errorf("%s did not succeed (outcome %q): there are no export files to verify", rec.Name, rec.Outcome)
	}
	var st VerifiedState
	if vs := p.cfg.Verifications; vs != nil {
		var err error
		if st, err = vs.VerifiedState(ctx, rec.Target); err != nil {
			return Verification{}, fmt.Errorf("read the target's verifications: %w", err)
		}
	}
	v := p.check(ctx, rec, previousContent(st, rec.Name))
	return v, ctx.Err()
}

// previousContent is what an export of the target is compared with: the
// latest verification when its files were read (whatever it found), else
// the latest good one; nil when there is none.
func previousContent(st VerifiedState, name string) *Content {
	for _, v := range []*Verification{st.Latest, st.Good} {
		if v != nil && v.Operation != name && v.Error == "" && !v.TimedOut {
			c := v.Content
			return &c
		}
	}
	return nil
}

// check reads rec's files and the source's counts within ContentTimeout and
// compares them (CheckContent).
func (p *Poller) check(ctx context.Context, rec Record, previous *Content) Verification {
	timeout := p.cfg.ContentTimeout
	if timeout <= 0 {
		timeout = DefaultContentTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	db := rec.DatabaseOf()
	v := Verification{
		Operation: rec.Name, Target: rec.Target, Project: rec.Project, Database: db,
		OutputURL: rec.OutputURL, ExportTime: exportTime(rec.Operation),
	}
	readDB := db
	if IsDefaultDatabase(readDB) {
		readDB = ""
	}
	c, err := p.cfg.Content.ReadDatabase(cctx, rec.OutputURL, readDB)
	v.Content = c
	if err != nil {
		v.TimedOut = errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
		if v.TimedOut {
			v.Error = fmt.Sprintf("reading the files took longer than %s: %v", timeout, err)
		} else {
			v.Error = err.Error()
			v.Findings = []ContentFinding{{Rule: ContentUnreadable, Text: "The export's files could not be read: " + BoundText(err.Error(), MaxErrorText)}}
		}
		v.At = p.cfg.Clock.Now()
		return v.Bounded()
	}
	var source map[string]int64
	if p.cfg.SourceCounter != nil {
		source, err = p.countSource(cctx, rec, db, c, previous)
		if err != nil {
			v.SourceError = err.Error()
			source = nil
		}
		v.Source = source
	}
	v.Findings = CheckContent(c, rec.Operation, previous, source)
	v.At = p.cfg.Clock.Now()
	return v.Bounded()
}

// exportTime is the point in time an export holds: its snapshot time, else
// its end (an export that is not one point in time ends with the latest
// data it read).
func exportTime(op Operation) time.Time {
	if !op.SnapshotTime.IsZero() {
		return op.SnapshotTime
	}
	return op.EndTime
}

// countSource counts, in the source database, each kind of the export and
// of the previous one (a kind that is in the database but missing from the
// files shows so), at most MaxStoredKinds of them.
func (p *Poller) countSource(ctx context.Context, rec Record, db string, c Content, previous *Content) (map[string]int64, error) {
	out := map[string]int64{}
	kinds := append([]KindCount(nil), c.Kinds...)
	if previous != nil {
		kinds = append(kinds, previous.Kinds...)
	}
	for _, k := range kinds {
		key := k.Namespace + "/" + k.Kind
		if _, ok := out[key]; ok || k.Kind == CutKind || !inFilter(rec.Operation, k) {
			continue
		}
		if len(out) == MaxStoredKinds {
			break
		}
		sctx, cancel := p.stepContext(ctx)
		n, err := p.cfg.SourceCounter.Count(sctx, rec.Project, db, k.Namespace, k.Kind)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("count %s in the source database: %w", quoteKind(k.Kind), err)
		}
		out[key] = n
	}
	return out, nil
}

// inFilter tells whether the export's entity filter takes k: a kind of a
// previous export that this one was not asked for is not counted.
func inFilter(op Operation, k KindCount) bool {
	in := func(list []string, s string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	return in(op.Kinds, k.Kind) && in(op.Namespaces, k.Namespace)
}
