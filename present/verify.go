package present

import (
	"fmt"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// VerifiedText is a verification in one line: "verified: 1,229,517
// entities in 12 kinds, 11.6 GiB in 40 files", "NOT verified: …", or "not
// verified: …" for a read cut by its time bound.
func VerifiedText(v poller.Verification) string {
	c := v.Content
	size := fmt.Sprintf("%s entities in %s, %s in %s", Count(c.Entities), Quantity(c.KindNames(), "kind", "kinds"),
		Bytes(c.Bytes), Quantity(c.Files, "file", "files"))
	switch {
	case v.TimedOut:
		return "not verified: " + Detail(v.Error)
	case v.Error != "":
		return "NOT verified: " + Detail(v.Error)
	case v.Alarm():
		return "NOT verified: " + size
	}
	return "verified: " + size
}

// Quantity is "1 kind", "12 kinds".
func Quantity(n int, one, many string) string {
	return Count(int64(n)) + " " + Plural(n, one, many)
}

// verificationNotes are a verification's findings, alarms first, and a
// source count that could not be taken.
func verificationNotes(v poller.Verification) []Note {
	var alarms, warnings []Note
	for _, f := range v.Findings {
		n := Note{Label: "Warning", Text: Detail(f.Text)}
		if f.Rule.Alarm() {
			n.Label = "Alarm"
			alarms = append(alarms, n)
			continue
		}
		warnings = append(warnings, n)
	}
	if v.SourceError != "" {
		warnings = append(warnings, Note{Label: "Source not counted", Text: Detail(v.SourceError)})
	}
	return append(alarms, warnings...)
}

// DrillTitle says how a drill ended, in a few words: "Restore verified in
// 41m: 1,229,517 entities in 12 kinds" or "Restore drill failed at import".
func DrillTitle(d poller.Drill) string {
	switch d.Outcome {
	case poller.DrillPassed:
		var n int64
		for _, k := range d.Counted {
			n += k.Entities
		}
		return fmt.Sprintf("Restore verified in %s: %s entities in %s", Took(d.RTO()), Count(n),
			Quantity(len(kindSet(d.Counted)), "kind", "kinds"))
	case poller.DrillFailed:
		return "Restore drill failed at step " + string(d.FailedStep)
	}
	return "Restore drill under way (" + string(d.Step) + ")"
}

func kindSet(ks []poller.KindCount) map[string]bool {
	m := map[string]bool{}
	for _, k := range ks {
		m[k.Kind] = true
	}
	return m
}

// formatDrill renders a drill's report: what was restored where, its
// restore time (RTO) and the age of the restored point (RPO), and on
// failure the step that failed, with what to clean up by hand.
func formatDrill(d poller.Drill, loc *time.Location) Message {
	m := Message{Title: withTarget(d.Target, DrillTitle(d)), Color: ColorSuccess}
	if d.Outcome != poller.DrillPassed {
		m.Color = ColorFailure
	}
	if d.Target != "" {
		m.Fields = append(m.Fields, Field{Title: "Target", Value: Name(d.Target), Short: true})
	}
	m.Fields = append(m.Fields, Field{Title: "Project", Value: Name(d.Project), Short: true})
	if !poller.IsDefaultDatabase(d.Database) {
		m.Fields = append(m.Fields, Field{Title: "Database", Value: Name(d.Database), Short: true})
	}
	var want, got int64
	for _, k := range d.Expected {
		want += k.Entities
	}
	for _, k := range d.Counted {
		got += k.Entities
	}
	m.Fields = append(m.Fields,
		Field{Title: "Restore time (RTO)", Value: orDash(d.RTO()), Short: true},
		Field{Title: "Restored point age (RPO)", Value: orDash(d.RPO()), Short: true},
		Field{Title: "Entities restored", Value: Count(got) + " of " + Count(want), Short: true},
		Field{Title: "Kinds", Value: List(d.Kinds, nil), Short: true},
		Field{Title: "Began", Value: Clock(d.Began, loc), Short: true},
		Field{Title: "Restored point", Value: Clock(d.ExportTime, loc), Short: true},
		Field{Title: "Export restored", Value: OrNone(Name(d.Export))},
		Field{Title: "Scratch database", Value: Name(poller.Scope(d.ScratchProject, d.ScratchDatabase))},
	)
	if d.ImportOp != "" {
		m.Fields = append(m.Fields, Field{Title: "Import operation", Value: Name(d.ImportOp)})
	}
	if d.Error != "" {
		m.Notes = append(m.Notes, Note{Label: "Error", Text: Detail(d.Error)})
	}
	for _, f := range d.Findings {
		m.Notes = append(m.Notes, Note{Label: "Mismatch", Text: Detail(f.Text)})
	}
	if d.DeleteError != "" {
		m.Notes = append(m.Notes, Note{Label: "Scratch database not deleted", Text: Detail(d.DeleteError)})
		if d.CreateScratch {
			m.Notes = append(m.Notes, Note{Label: "Delete it", Command: true,
				Text: "gcloud firestore databases delete --database=" + shellWord(d.ScratchDatabase) + " --project=" + d.ScratchProject})
		}
	}
	if d.ImportOp != "" && d.Outcome == poller.DrillFailed && d.FailedStep == poller.DrillImport {
		m.Notes = append(m.Notes, Note{Label: "Details", Text: DescribeCommand(d.ImportOp), Command: true})
	}
	if d.Outcome == poller.DrillPassed {
		m.Notes = append(m.Notes, Note{Label: "Drill", Text: fmt.Sprintf("%s restored into a scratch database, counted kind by kind, and matched its export's files",
			Name(d.Export))})
	}
	return m
}

func orDash(d time.Duration) string {
	if d <= 0 {
		return None
	}
	return Took(d)
}

// Took writes a duration to the precision that matters at its size: "41m",
// "2h5m", "12.3s", "2ms".
func Took(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	// 41m0s, 2h5m0s, 3h0m0s: the zero seconds (and minutes) say nothing.
	s := strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	if h, ok := strings.CutSuffix(s, "h0m"); ok {
		return h + "h"
	}
	return s
}

// drillHeadline is a drill's report in one line.
func drillHeadline(d poller.Drill) string {
	line := withTarget(d.Target, DrillTitle(d))
	switch {
	case d.Outcome == poller.DrillPassed:
		return line + " (RPO " + orDash(d.RPO()) + ")"
	case d.Error != "":
		return line + " — " + Detail(d.Error)
	}
	return line
}

// VerifiedBadge is the badge of a verification on the status page.
func VerifiedBadge(v *poller.Verification) Badge {
	switch {
	case v == nil:
		return Badge{Text: "not verified", Class: "run"}
	case v.TimedOut:
		return Badge{Text: "not verified", Class: "warn"}
	case v.Alarm():
		return Badge{Text: "NOT verified", Class: "bad"}
	}
	return Badge{Text: "verified", Class: "ok"}
}

// DrillBadge is the badge of a target's last drill on the status page:
// failed, overdue (none passed within twice its period), under way, or
// passed.
func DrillBadge(d *poller.Drill, every time.Duration, now time.Time) Badge {
	switch {
	case d == nil:
		return Badge{Text: "no drill yet", Class: "run"}
	case d.Outcome == poller.DrillFailed:
		return Badge{Text: "drill failed at " + string(d.FailedStep), Class: "bad"}
	case every > 0 && now.Sub(d.Began) > 2*every:
		return Badge{Text: "drill overdue", Class: "bad"}
	case d.Outcome == poller.DrillRunning:
		return Badge{Text: "drill under way", Class: "run"}
	}
	return Badge{Text: "drill passed", Class: "ok"}
}

// DrillRTO is a drill's restore time as the report shows it: "41m", or
// None before its import ended.
func DrillRTO(d poller.Drill) string { return orDash(d.RTO()) }

// DrillRPO is the age of a drill's restored point as the report shows it,
// or None before it chose an export.
func DrillRPO(d poller.Drill) string { return orDash(d.RPO()) }

// DrillOverdueBadge is the badge of a target whose drill is overdue, the
// one DrillBadge gives past twice its period: the status page also gives
// it to a target that has had no drill although a verified export has
// waited for one longer than its period.
func DrillOverdueBadge() Badge { return Badge{Text: "drill overdue", Class: "bad"} }
