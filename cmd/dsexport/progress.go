package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// progress shows `export --wait` following its export: a bar redrawn in place
// on a terminal, one plain line per poll anywhere else (a log, a pipe, CI).
type progress struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	drawn    bool
}

// newProgress writes to w, as a bar when w is a terminal.
func newProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, terminal: isTerminal(w), now: now}
}

// isTerminal tells whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update shows rec, the record after a poll.
func (p *progress) update(rec poller.Record) {
	elapsed := present.Elapsed(rec.StartTime, p.now())
	ent := present.Percent(rec.EntitiesCompleted, rec.EntitiesEstimated)
	byt := present.Percent(rec.BytesCompleted, rec.BytesEstimated)
	eta := remaining(rec, p.now())
	if !p.terminal {
		fmt.Fprintf(p.w, "poll %d: %s, entities %s (%s), bytes %s (%s), elapsed %s, left %s\n",
			rec.Polls, rec.State, present.Count(rec.EntitiesCompleted), ent, present.Bytes(rec.BytesCompleted), byt, elapsed, eta)
		return
	}
	const width = 24
	filled := 0
	if rec.EntitiesEstimated > 0 {
		filled = int(min(rec.EntitiesCompleted, rec.EntitiesEstimated) * width / rec.EntitiesEstimated)
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	// \r goes back to the start of the line and \x1b[K clears what a longer
	// line left, so the bar is redrawn in place.
	fmt.Fprintf(p.w, "\r%s %s entities %s · %s bytes · %s · elapsed %s · left %s\x1b[K",
		bar, ent, present.Count(rec.EntitiesCompleted), byt, rec.State, elapsed, eta)
	p.drawn = true
}

// done ends the bar's line, so the report starts on a line of its own.
func (p *progress) done() {
	if p.terminal && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// remaining estimates the time left from the entity rate so far; unknown
// before any progress, with no estimate, or once the estimate is passed.
func remaining(rec poller.Record, now time.Time) string {
	if rec.StartTime.IsZero() || rec.EntitiesCompleted <= 0 || rec.EntitiesEstimated <= rec.EntitiesCompleted {
		return present.None
	}
	elapsed := now.Sub(rec.StartTime)
	left := time.Duration(float64(elapsed) * float64(rec.EntitiesEstimated-rec.EntitiesCompleted) / float64(rec.EntitiesCompleted))
	return left.Round(time.Second).String()
}
