package present

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// NoEstimate is what a share says when the Admin API has no estimate yet.
const NoEstimate = "no estimate"

// PercentOf is completed in percent of estimated, floored to 0.1 so 99.96%
// does not read as done, and 100 once completed reaches the estimate (which
// is only a guess that completed may pass). ok is false without an estimate.
func PercentOf(completed, estimated int64) (pct float64, ok bool) {
	if estimated <= 0 {
		return 0, false
	}
	if completed >= estimated {
		return 100, true
	}
	return math.Floor(1000*float64(max(completed, 0))/float64(estimated)) / 10, true
}

// Percent writes PercentOf: "38.8%", "100%", or NoEstimate.
func Percent(completed, estimated int64) string {
	pct, ok := PercentOf(completed, estimated)
	switch {
	case !ok:
		return NoEstimate
	case pct == 100:
		return "100%"
	}
	return fmt.Sprintf("%.1f%%", pct)
}

// Of writes completed of estimated in unit, or completed alone without an
// estimate: "450 of 1,000".
func Of(completed, estimated int64, unit func(int64) string) string {
	if estimated > 0 {
		return unit(completed) + " of " + unit(estimated)
	}
	return unit(completed)
}

// ExactBytes writes n to the byte: "12,421,772,610 bytes".
func ExactBytes(n int64) string { return Count(n) + " bytes" }

// Kinds writes an entity filter's kinds; none means all.
func Kinds(kinds []string) string { return List(kinds, nil) }

// Namespaces writes an entity filter's namespaces, the default one named.
func Namespaces(namespaces []string) string { return List(namespaces, DefaultNamespace) }

// ShortCount writes a count for a chart's axis: 21.9M.
func ShortCount(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', -1, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// HumanDuration writes d to the second, or to the minute past an hour.
func HumanDuration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.Round(time.Second).String()
}

// Ago says how long before now t was, in the largest whole unit.
func Ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return "at an unknown time"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		m := int(d / time.Minute)
		return fmt.Sprintf("%d %s ago", m, Plural(m, "minute", "minutes"))
	case d < 48*time.Hour:
		h := int(d / time.Hour)
		return fmt.Sprintf("%d %s ago", h, Plural(h, "hour", "hours"))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// The layouts of shorter times: a list's row, a chart's axis.
const (
	ListLayout  = "2006-01-02 15:04 MST"
	ShortLayout = "Jan 2"
)

// TimeIn writes t in loc with layout, or None for a zero time.
func TimeIn(t time.Time, loc *time.Location, layout string) string {
	if t.IsZero() {
		return None
	}
	return t.In(orUTC(loc)).Format(layout)
}

// ISOTime is t in RFC 3339 in UTC, for a machine; "" for a zero time.
func ISOTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ShrinkText says how much a success shrank, against the previous count.
func ShrinkText(sh poller.Shrink) string {
	return fmt.Sprintf("%.1f%% fewer entities than the previous success (%s)", sh.Percent(), Count(sh.PreviousEntities))
}

// Badge is the state an operator cares about, in words and a class the
// status page colours: ok, bad, warn or run.
type Badge struct {
	Class, Text string
}

// Refused tells whether r is about a start the Admin API refused: Google
// never had an operation by that name.
func Refused(r poller.Report) bool { return r.StartError != "" || r.Operation.Refused }

// OutcomeOf is r's outcome, or for a done operation the poller has not
// classified yet, what its snapshot says.
func OutcomeOf(r poller.Report) poller.Outcome {
	if r.Outcome == poller.OutcomeNone && r.Operation.Done {
		return poller.Classify(r.Operation)
	}
	return r.Outcome
}

// BadgeOf is r's badge.
func BadgeOf(r poller.Report) Badge {
	if r.Backup != nil {
		return BackupBadge(r.Backup.Kind)
	}
	op := r.Operation
	switch outcome := OutcomeOf(r); {
	case Refused(r):
		return Badge{"bad", "not started"}
	case outcome == poller.OutcomeSuccess:
		return Badge{"ok", "succeeded"}
	case outcome == poller.OutcomeFailure && (op.State == poller.StateCancelled || op.ErrorCode == 1):
		return Badge{"bad", "cancelled"}
	case outcome == poller.OutcomeFailure:
		return Badge{"bad", "failed"}
	case outcome == poller.OutcomeTimeout:
		return Badge{"warn", "timed out"}
	case outcome == poller.OutcomeUnexpected:
		return Badge{"warn", "unexpected end"}
	case outcome == poller.OutcomeNone:
		return Badge{"run", "running"}
	default:
		return Badge{"warn", string(outcome)}
	}
}

// Command is a command line to copy, with what it is for.
type Command struct {
	Label, Text string
}

// NextCommand is what to run about r: the restore of a success, the
// describe command otherwise, a backup notice's first command. A refused start has none (there is nothing at
// Google to describe), nor a success that reported no output URL.
func NextCommand(r poller.Report) (Command, bool) {
	if r.Backup != nil {
		// A notice's first command is the one it is about: the restore of a
		// new backup, the list of a missing one's, the schedule to create.
		for _, n := range BackupNotes(*r.Backup) {
			if n.Command {
				return Command{n.Label, n.Text}, true
			}
		}
		return Command{}, false
	}
	op := r.Operation
	switch {
	case Refused(r):
		return Command{}, false
	case OutcomeOf(r) == poller.OutcomeSuccess:
		if op.OutputURL == "" {
			return Command{}, false
		}
		return Command{"Restore", RestoreCommand(op)}, true
	case op.Name == "":
		return Command{}, false
	}
	return Command{"Details", DescribeCommand(op.Name)}, true
}
