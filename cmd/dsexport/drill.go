package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// errDrillFailed is drill's error when the restore did not verify: exit
// status 1, after the report.
var errDrillFailed = errors.New("the restore drill failed")

// drill runs a restore drill of target by hand and follows it to its end:
// the latest verified export imported into a scratch database, counted,
// compared and the scratch database deleted, with a progress line per
// step. It goes through the same store as the sweep's drills, so a drill
// under way for the target (a sweep's) is followed instead of a second one
// begun, and the report is sent once.
func drill(ctx context.Context, s settings, name string, every time.Duration, stdout, stderr io.Writer) error {
	c, err := s.parse(forExport)
	if err != nil {
		return err
	}
	t, err := c.target(name)
	if err != nil {
		return err
	}
	if t.Export == nil {
		return usagef("--target=%s: the target only watches managed backups; a drill restores a verified export", t.Name)
	}
	if t.Drill == nil {
		// By hand, a target without drill: gets the defaults: a scratch
		// database dsexport creates in the target's project, every kind.
		t.Drill = &poller.DrillSpec{}
	}
	d, err := build(ctx, c, stdout, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	bar := newDrillProgress(stdout, time.Now)
	d.onDrill = bar.update
	d.newPoller(c, nil)
	dr, begun, err := d.poller.BeginDrill(ctx, t, poller.TriggerManual, true)
	if err != nil {
		return err
	}
	if !begun {
		fmt.Fprintf(stdout, "a drill of %s is under way already (%s, at step %s): following it\n", present.Name(t.Name), dr.ID, dr.Step)
	} else {
		fmt.Fprintf(stdout, "drill %s: restoring %s into %s\n", dr.ID, poller.Scope(t.Project, t.Database),
			poller.Scope(dr.ScratchProject, dr.ScratchDatabase))
	}
	for {
		dr, err = d.poller.AdvanceDrill(ctx, dr.ID)
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "drill %s: %v (trying again)\n", dr.ID, err)
		}
		bar.update(dr)
		if dr.Finished() {
			break
		}
		select {
		case <-ctx.Done():
			bar.done()
			fmt.Fprintf(stdout, "stopped; the drill goes on at the next sweep of a dsexport serve on this store (drill %s)\n", dr.ID)
			return ctx.Err()
		case <-time.After(every):
		}
	}
	bar.done()
	if _, ok := d.notifier.(*notifier.Text); !ok {
		// The report went to Slack; the terminal gets it too.
		if err := notifier.WriteText(stdout, present.Format(poller.Report{Drill: &dr}, c.loc)); err != nil {
			return err
		}
	}
	if dr.Outcome != poller.DrillPassed {
		return errDrillFailed
	}
	return nil
}

// drillProgress shows a drill's steps: a line redrawn in place on a
// terminal, one line per change anywhere else.
type drillProgress struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	last     string
	drawn    bool
}

func newDrillProgress(w io.Writer, now func() time.Time) *drillProgress {
	return &drillProgress{w: w, terminal: isTerminal(w), now: now}
}

// steps are the drill's steps in order, for the bar.
var steps = []poller.DrillStep{poller.DrillChoose, poller.DrillCreate, poller.DrillImport, poller.DrillCount,
	poller.DrillCompare, poller.DrillDelete, poller.DrillReport, poller.DrillDone}

func (p *drillProgress) update(d poller.Drill) {
	at := 0
	for i, s := range steps {
		if s == d.Step {
			at = i
		}
	}
	bar := strings.Repeat("█", at*3) + strings.Repeat("░", (len(steps)-1-at)*3)
	line := fmt.Sprintf("step %d/%d %s", min(at+1, len(steps)-1), len(steps)-1, d.Step)
	if d.Step == poller.DrillImport && d.ImportOp != "" {
		line += fmt.Sprintf(" · %s entities · %s", present.Count(d.ImportEntities), present.Bytes(d.ImportBytes))
	}
	if d.Error != "" && d.Outcome == poller.DrillRunning {
		line += " · last try failed: " + present.Detail(d.Error)
	}
	line += " · elapsed " + present.Elapsed(d.Began, p.now())
	if !p.terminal {
		if line != p.last {
			fmt.Fprintln(p.w, line)
		}
		p.last = line
		return
	}
	fmt.Fprintf(p.w, "\r%s %s\x1b[K", bar, line)
	p.drawn = true
}

func (p *drillProgress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
