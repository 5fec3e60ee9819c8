package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

func TestProgress(t *testing.T) {
	start := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	now := func() time.Time { return start.Add(10 * time.Minute) }
	rec := poller.Record{Polls: 3, Operation: poller.Operation{State: poller.StateProcessing, StartTime: start,
		EntitiesCompleted: 250, EntitiesEstimated: 1000, BytesCompleted: 3 << 20, BytesEstimated: 12 << 20}}

	// Not a terminal (a pipe, a log): one plain line per poll.
	var plain bytes.Buffer
	p := newProgress(&plain, now)
	p.update(rec)
	rec.Polls, rec.EntitiesCompleted = 4, 500
	p.update(rec)
	p.done()
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("plain output has %d lines; want one per poll:\n%s", len(lines), plain.String())
	}
	if got, want := lines[0], "poll 3: PROCESSING, entities 250 (25.0%), bytes 3.0 MiB (25.0%), elapsed 10m0s, left 30m0s"; got != want {
		t.Errorf("plain line = %q; want %q", got, want)
	}
	if strings.ContainsAny(plain.String(), "\r\x1b") {
		t.Errorf("plain output has terminal control characters: %q", plain.String())
	}

	// A terminal: the bar is redrawn in place, then the line is ended once.
	var tty bytes.Buffer
	p = &progress{w: &tty, terminal: true, now: now}
	p.update(rec)
	rec.EntitiesCompleted = 1200 // completed may pass the estimate
	p.update(rec)
	p.done()
	out := tty.String()
	if got := strings.Count(out, "\r"); got != 2 {
		t.Errorf("terminal output redraws %d times; want 2: %q", got, out)
	}
	if !strings.HasSuffix(out, "\x1b[K\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("terminal output does not end the bar's line once: %q", out)
	}
	if !strings.Contains(out, "50.0% entities") || !strings.Contains(out, "100% entities") || !strings.Contains(out, "left —") {
		t.Errorf("terminal output lacks the percentages or the unknown time left: %q", out)
	}
	if strings.Count(out, "█") != 12+24 {
		t.Errorf("bars filled %d cells; want 12 then 24 (capped at the estimate): %q", strings.Count(out, "█"), out)
	}
}

func TestPercentAndRemaining(t *testing.T) {
	for _, tt := range []struct {
		completed, estimated int64
		want                 string
	}{{0, 0, "no estimate"}, {5, 0, "no estimate"}, {1, 3, "33.3%"}, {3, 3, "100%"}, {4, 3, "100%"}} {
		if got := present.Percent(tt.completed, tt.estimated); got != tt.want {
			t.Errorf("percent(%d, %d) = %q; want %q", tt.completed, tt.estimated, got, tt.want)
		}
	}
	now := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)
	if got := remaining(poller.Record{}, now); got != "—" {
		t.Errorf("remaining without a start = %q; want —", got)
	}
	rec := poller.Record{Operation: poller.Operation{StartTime: now.Add(-time.Hour), EntitiesCompleted: 100, EntitiesEstimated: 400}}
	if got, want := remaining(rec, now), "3h0m0s"; got != want {
		t.Errorf("remaining = %q; want %q", got, want)
	}
}
