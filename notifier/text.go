// Package notifier tells people how a Datastore export ended, and what the
// watch of managed backups found: in Slack (bot token or incoming webhook)
// or as plain text on a terminal, laying out the present.Message of a
// poller.Report.
package notifier

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// Text writes reports as plain text, for a terminal or a log when no Slack is
// configured. It implements poller.Notifier.
type Text struct {
	loc *time.Location
	// now is the time a report is written at, which a missing backup's
	// age is told by.
	now func() time.Time

	// mu keeps concurrent reports from interleaving on w.
	mu sync.Mutex
	w  io.Writer
}

var _ poller.Notifier = (*Text)(nil)

// NewText returns a notifier writing to w with times in loc (UTC when nil).
func NewText(w io.Writer, loc *time.Location) *Text {
	return &Text{w: w, loc: orUTC(loc), now: time.Now}
}

// Notify writes r: the title, one aligned field per line, then the notes.
func (t *Text) Notify(ctx context.Context, r poller.Report) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	var b bytes.Buffer
	_ = WriteText(&b, present.FormatAt(r, t.loc, t.now())) // A bytes.Buffer does not fail.
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteText lays m out as plain text. It is exported for commands that show a
// report without notifying, such as status.
func WriteText(w io.Writer, m present.Message) error {
	width := 0
	for _, f := range m.Fields {
		width = max(width, len(f.Title)+1)
	}
	var b strings.Builder
	b.WriteString(m.Title + "\n")
	for _, f := range m.Fields {
		fmt.Fprintf(&b, "  %-*s %s\n", width, f.Title+":", f.Value)
	}
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "%s: %s\n", n.Label, n.Text)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
