// Package notifier tells people how a Datastore export ended: in Slack (bot
// token or incoming webhook) or as plain text on a terminal, from one shared
// rendering of a poller.Report.
package notifier

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// The colours of a report, as Slack's attachment colour bar shows them.
const (
	ColorSuccess = "#2eb886"
	ColorFailure = "#d40e0d"
	ColorWarning = "#daa038"
)

// TimeLayout is how report times are written: the zone abbreviation is kept so
// a reader in another zone is not misled.
const TimeLayout = "2006-01-02 15:04:05 MST"

// none stands for a value the report does not have (an export that never
// started has no operation name; a running one has no end time).
const none = "—"

// Message is a report rendered once, for every notifier to lay out in its own
// way, so Slack and the terminal always state the same facts.
type Message struct {
	Title  string
	Color  string
	Fields []Field
	// Notes are what to read or run next: the restore command, the error, the
	// describe command.
	Notes []Note
}

// Field is one fact about the export, such as its project or duration.
type Field struct {
	Title string
	Value string
	// Short tells Slack the value fits in half the attachment's width.
	Short bool
}

// Note is one line after the fields. A Command is meant to be copied into a
// shell, so it is shown verbatim (in Slack, as code).
type Note struct {
	Label   string
	Text    string
	Command bool
}

// Format renders r with its times in loc (UTC when loc is nil).
func Format(r poller.Report, loc *time.Location) Message {
	if loc == nil {
		loc = time.UTC
	}
	if r.Stale != nil {
		return formatStale(*r.Stale, loc)
	}
	op := r.Operation
	m := Message{Title: title(r), Color: color(r)}

	project := projectOf(op)
	output := Field{Title: "Output URL", Value: op.OutputURL}
	if op.OutputURL == "" {
		output = Field{Title: "Output prefix", Value: orNone(op.OutputURLPrefix)}
	}
	m.Fields = []Field{
		{Title: "Project", Value: orNone(project), Short: true},
		{Title: "Trigger", Value: orNone(string(op.Trigger)), Short: true},
		{Title: "Operation", Value: orNone(op.Name)},
		{Title: "State", Value: orNone(string(op.State)), Short: true},
		{Title: "Duration", Value: duration(op.StartTime, op.EndTime), Short: true},
		{Title: "Started", Value: clock(op.StartTime, loc), Short: true},
		{Title: "Ended", Value: clock(op.EndTime, loc), Short: true},
		{Title: "Entities exported", Value: entities(op.EntitiesCompleted, op.EntitiesEstimated), Short: true},
		{Title: "Bytes exported", Value: byteSize(op.BytesCompleted), Short: true},
		{Title: "Kinds", Value: list(op.Kinds, nil), Short: true},
		{Title: "Namespaces", Value: list(op.Namespaces, defaultNamespace), Short: true},
		output,
	}
	m.Notes = notes(r)
	if sh := r.Shrink; sh != nil {
		// A success that lost entities may be a data loss being backed up:
		// say so before anything else, with both counts.
		m.Color = ColorWarning
		m.Notes = append([]Note{{Label: "Warning", Text: fmt.Sprintf(
			"%s entities, %.1f%% fewer than the %s of the previous successful export %s",
			thousands(sh.Entities), sh.Percent(), thousands(sh.PreviousEntities), sh.PreviousName)}}, m.Notes...)
	}
	return m
}

// formatStale renders the staleness alarm, which is about no one operation.
func formatStale(st poller.Stale, loc *time.Location) Message {
	m := Message{Color: ColorFailure}
	last := none
	if st.LastSuccess.Name == "" {
		m.Title = fmt.Sprintf("No Datastore export of %s has succeeded since %s", st.Project, clock(st.Since, loc))
	} else {
		m.Title = fmt.Sprintf("No Datastore export of %s has succeeded for over %s", st.Project, roundDuration(st.After))
		last = clock(st.LastSuccess.At, loc)
	}
	m.Fields = []Field{
		{Title: "Project", Value: st.Project, Short: true},
		{Title: "Last success", Value: last, Short: true},
		{Title: "Last successful operation", Value: orNone(st.LastSuccess.Name)},
	}
	m.Notes = []Note{
		{Label: "Check", Text: "gcloud datastore operations list --project=" + st.Project, Command: true},
		{Label: "Alarm", Text: "raised once after DSEXPORT_STALE_AFTER without a success; not repeated until an export succeeds"},
	}
	return m
}

// roundDuration writes d in whole hours when it is some, else as Go does.
func roundDuration(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return d.String()
}

// title says in a few words how the export ended; it is what a notification shows.
func title(r poller.Report) string {
	if r.StartError != "" {
		return "Datastore export could not be started"
	}
	switch r.Outcome {
	case poller.OutcomeSuccess:
		return "Datastore export succeeded"
	case poller.OutcomeFailure:
		return "Datastore export failed"
	case poller.OutcomeUnexpected:
		if !r.Operation.Done {
			// Polling ended without a final state: the API stopped knowing it.
			return "Datastore export could no longer be read"
		}
		state := r.Operation.State
		if state == "" {
			state = poller.StateUnspecified
		}
		return "Datastore export ended in unexpected state " + string(state)
	case poller.OutcomeTimeout:
		if r.LastError != "" {
			return fmt.Sprintf("Datastore export not seen to finish after %d %s", r.Polls, plural(r.Polls, "poll", "polls"))
		}
		return fmt.Sprintf("Datastore export still running after %d %s", r.Polls, plural(r.Polls, "poll", "polls"))
	case poller.OutcomeNone:
		// The poller does not report running exports, but a status command
		// may render one; saying so beats claiming an outcome.
		return "Datastore export is running"
	}
	return fmt.Sprintf("Datastore export ended with outcome %q", string(r.Outcome))
}

func color(r poller.Report) string {
	if r.StartError != "" {
		return ColorFailure
	}
	switch r.Outcome {
	case poller.OutcomeSuccess:
		return ColorSuccess
	case poller.OutcomeFailure:
		return ColorFailure
	}
	return ColorWarning
}

// notes lists what the reader needs next. The commands are exact so they can
// be pasted: gcloud takes the full operation name and the output URL as is.
func notes(r poller.Report) []Note {
	op := r.Operation
	if r.StartError != "" {
		// The API's own message names the cause (permissions, quota, a bad
		// bucket); rewording it would only lose detail.
		return []Note{{Label: "Error", Text: r.StartError}}
	}
	var ns []Note
	switch r.Outcome {
	case poller.OutcomeSuccess:
		if op.OutputURL != "" {
			ns = append(ns, Note{Label: "Restore", Text: "gcloud datastore import " + op.OutputURL, Command: true})
		} else {
			ns = append(ns, Note{Label: "Restore", Text: "the operation reported no output URL; look for the .overall_export_metadata file under " + orNone(op.OutputURLPrefix)})
		}
		return ns
	case poller.OutcomeFailure:
		ns = append(ns, Note{Label: "Error", Text: errorText(op)})
	case poller.OutcomeNone:
		return nil
	default:
		if op.ErrorMessage != "" || op.ErrorCode != 0 {
			ns = append(ns, Note{Label: "Error", Text: errorText(op)})
		}
	}
	if r.LastError != "" {
		// The API could not be read at the end: that, not the export, may be the problem.
		ns = append(ns, Note{Label: "Last poll failed", Text: r.LastError})
	}
	if op.Name != "" {
		ns = append(ns, Note{Label: "Details", Text: "gcloud datastore operations describe " + op.Name, Command: true})
	}
	return ns
}

// errorText is the operation's error message followed by its google.rpc code,
// whose name tells at a glance whether it is a permission, quota or cancel.
func errorText(op poller.Operation) string {
	msg := op.ErrorMessage
	if msg == "" {
		msg = "the operation reported no error message"
	}
	if op.ErrorCode == 0 {
		return msg
	}
	return fmt.Sprintf("%s (code %d %s)", msg, op.ErrorCode, codeName(op.ErrorCode))
}

// codeName is the name of a google.rpc.Code.
func codeName(code int) string {
	switch code {
	case 0:
		return "OK"
	case 1:
		return "CANCELLED"
	case 2:
		return "UNKNOWN"
	case 3:
		return "INVALID_ARGUMENT"
	case 4:
		return "DEADLINE_EXCEEDED"
	case 5:
		return "NOT_FOUND"
	case 6:
		return "ALREADY_EXISTS"
	case 7:
		return "PERMISSION_DENIED"
	case 8:
		return "RESOURCE_EXHAUSTED"
	case 9:
		return "FAILED_PRECONDITION"
	case 10:
		return "ABORTED"
	case 11:
		return "OUT_OF_RANGE"
	case 12:
		return "UNIMPLEMENTED"
	case 13:
		return "INTERNAL"
	case 14:
		return "UNAVAILABLE"
	case 15:
		return "DATA_LOSS"
	case 16:
		return "UNAUTHENTICATED"
	}
	return "UNKNOWN_CODE"
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

func clock(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return none
	}
	return t.In(loc).Format(TimeLayout)
}

// duration is end−start; without an end (still running, or never started) the
// length is not known, and the time since the start would go stale in Slack.
func duration(start, end time.Time) string {
	if start.IsZero() || end.IsZero() {
		return none
	}
	return end.Sub(start).Round(time.Second).String()
}

// entities shows completed of estimated: completed may exceed the estimate,
// and an estimate of 0 means there is none.
func entities(completed, estimated int64) string {
	if estimated > 0 {
		return thousands(completed) + " of " + thousands(estimated)
	}
	return thousands(completed)
}

// byteSize shows a size in binary units for reading, and exactly for checking
// against the bucket.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return thousands(n) + " " + plural(int(n), "byte", "bytes")
	}
	v := float64(n)
	i := -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB (%s bytes)", v, "KMGTPE"[i], thousands(n))
}

// thousands writes n with comma separators: 21933027 is 21,933,027.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// defaultNamespace names the empty namespace, which would otherwise be invisible.
func defaultNamespace(s string) string {
	if s == "" {
		return "(default)"
	}
	return s
}

// list joins an entity filter's values; an empty filter exports everything.
func list(values []string, name func(string) string) string {
	if len(values) == 0 {
		return "all"
	}
	out := make([]string, len(values))
	for i, v := range values {
		if name != nil {
			v = name(v)
		}
		out[i] = v
	}
	return strings.Join(out, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ColorProgress is the colour of a message that follows a running export: a
// neutral blue, so it is not mistaken for an outcome.
const ColorProgress = "#439fe0"

// FormatStarted renders the message posted when an export starts. It says
// what was asked for; FormatProgress and finally Format replace it in place.
func FormatStarted(r poller.Report, loc *time.Location) Message {
	loc = orUTC(loc)
	op := r.Operation
	m := Message{Title: "Datastore export started", Color: ColorProgress}
	m.Fields = []Field{
		{Title: "Project", Value: orNone(projectOf(op)), Short: true},
		{Title: "Trigger", Value: orNone(string(op.Trigger)), Short: true},
		{Title: "Operation", Value: orNone(op.Name)},
		{Title: "State", Value: orNone(string(op.State)), Short: true},
		{Title: "Started", Value: clock(op.StartTime, loc), Short: true},
		{Title: "Kinds", Value: list(op.Kinds, nil), Short: true},
		{Title: "Namespaces", Value: list(op.Namespaces, defaultNamespace), Short: true},
		{Title: "Output prefix", Value: orNone(op.OutputURLPrefix)},
	}
	m.Notes = runningNotes(r)
	return m
}

// FormatProgress renders a running export's latest snapshot, as of now: how
// far it got against the Admin API's estimates, how long it has run, and
// how often it was read.
func FormatProgress(r poller.Report, loc *time.Location, now time.Time) Message {
	loc = orUTC(loc)
	op := r.Operation
	m := Message{Title: "Datastore export running", Color: ColorProgress}
	m.Fields = []Field{
		{Title: "Project", Value: orNone(projectOf(op)), Short: true},
		{Title: "Trigger", Value: orNone(string(op.Trigger)), Short: true},
		{Title: "Operation", Value: orNone(op.Name)},
		{Title: "State", Value: orNone(string(op.State)), Short: true},
		{Title: "Elapsed", Value: elapsed(op.StartTime, now), Short: true},
		{Title: "Started", Value: clock(op.StartTime, loc), Short: true},
		{Title: "Updated", Value: clock(now, loc), Short: true},
		{Title: "Entities exported", Value: progress(op.EntitiesCompleted, op.EntitiesEstimated, thousands), Short: true},
		{Title: "Bytes exported", Value: progress(op.BytesCompleted, op.BytesEstimated, binarySize), Short: true},
		{Title: "Polls", Value: strconv.Itoa(r.Polls), Short: true},
		{Title: "Kinds", Value: list(op.Kinds, nil), Short: true},
		{Title: "Namespaces", Value: list(op.Namespaces, defaultNamespace), Short: true},
		{Title: "Output prefix", Value: orNone(op.OutputURLPrefix)},
	}
	m.Notes = runningNotes(r)
	return m
}

// runningNotes are the notes of a running export: a failed last read, and
// the command that shows the operation as Google sees it.
func runningNotes(r poller.Report) []Note {
	var ns []Note
	if r.LastError != "" {
		ns = append(ns, Note{Label: "Last poll failed", Text: r.LastError})
	}
	if r.Operation.Name != "" {
		ns = append(ns, Note{Label: "Details", Text: "gcloud datastore operations describe " + r.Operation.Name, Command: true})
	}
	return ns
}

// headline is the report in one line, for a notification: the title, the
// project, and the fact that matters most (the size of a success, the error
// of a failure). Times are in loc (UTC when nil).
func headline(r poller.Report, loc *time.Location) string {
	if r.Stale != nil {
		return formatStale(*r.Stale, orUTC(loc)).Title
	}
	line := title(r)
	if p := projectOf(r.Operation); p != "" {
		line += " (" + p + ")"
	}
	op := r.Operation
	switch {
	case r.StartError != "":
		return line + " — " + r.StartError
	case r.Outcome == poller.OutcomeFailure:
		return line + " — " + errorText(op)
	}
	word := "entities"
	if op.EntitiesCompleted == 1 {
		word = "entity"
	}
	size := thousands(op.EntitiesCompleted) + " " + word + ", " + binarySize(op.BytesCompleted)
	if sh := r.Shrink; sh != nil {
		size += fmt.Sprintf(" (%.1f%% fewer entities than the previous export)", sh.Percent())
	}
	return line + " — " + size
}

// progress shows completed against an estimate, with the share done. The
// estimate is Google's guess: 0 means there is none yet, and completed may
// pass it, in which case the share stays at 100% rather than claim more.
func progress(completed, estimated int64, unit func(int64) string) string {
	if estimated <= 0 {
		return unit(completed) + " (no estimate yet)"
	}
	s := unit(completed) + " of ~" + unit(estimated)
	if completed >= estimated {
		return s + " (100%)"
	}
	// Rounded down, so 99.96% does not read as done.
	pct := math.Floor(1000*float64(max(completed, 0))/float64(estimated)) / 10
	return s + fmt.Sprintf(" (%.1f%%)", pct)
}

// elapsed is the time from start to now in whole seconds; a clock behind
// the start time shows 0s rather than a negative duration.
func elapsed(start, now time.Time) string {
	if start.IsZero() {
		return none
	}
	return max(now.Sub(start), 0).Round(time.Second).String()
}

// binarySize writes n in binary units with one decimal ("11.6 GiB"), without
// the exact count, for a progress line.
func binarySize(n int64) string {
	const unit = 1024
	if n < unit {
		return thousands(n) + " B"
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}

// projectOf is the operation's project. The name carries the project even
// when the snapshot's field was not filled in, and a message is more useful
// with it.
func projectOf(op poller.Operation) string {
	if op.Project != "" {
		return op.Project
	}
	p, _ := poller.ParseName(op.Name)
	return p
}
