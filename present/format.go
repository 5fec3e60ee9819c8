// Package present turns a poller.Report or poller.Record into the facts that
// are shown about it (title, badge, fields, commands, units), once, for Slack,
// plain text, the status pages and the CLI to lay out alike.
package present

import (
	"fmt"
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

// None stands for a value the report does not have (an export that never
// started has no operation name; a running one has no end time).
const None = "—"

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
func Format(r poller.Report, loc *time.Location) Message { return FormatAt(r, loc, time.Time{}) }

// FormatAt is Format rendered at now, which a backup notice ages the newest
// backup by; a zero now leaves the age out.
func FormatAt(r poller.Report, loc *time.Location, now time.Time) Message {
	loc = orUTC(loc)
	if r.Backup != nil {
		return formatBackup(*r.Backup, loc, now)
	}
	if r.Stale != nil {
		return formatStale(*r.Stale, loc)
	}
	if r.Drill != nil {
		return formatDrill(*r.Drill, loc)
	}
	op := r.Operation
	m := Message{Title: Title(r), Color: Color(r)}

	output := Field{Title: "Output URL", Value: op.OutputURL}
	if op.OutputURL == "" {
		output = Field{Title: "Output prefix", Value: OrNone(op.OutputURLPrefix)}
	}
	m.Fields = append(identity(op, loc),
		Field{Title: "Duration", Value: Duration(op.StartTime, op.EndTime), Short: true},
		Field{Title: "Started", Value: Clock(op.StartTime, loc), Short: true},
		Field{Title: "Ended", Value: Clock(op.EndTime, loc), Short: true},
		Field{Title: "Entities exported", Value: entities(op.EntitiesCompleted, op.EntitiesEstimated), Short: true},
		Field{Title: "Bytes exported", Value: ByteSize(op.BytesCompleted), Short: true},
		Field{Title: "Kinds", Value: List(op.Kinds, nil), Short: true},
		Field{Title: "Namespaces", Value: List(op.Namespaces, DefaultNamespace), Short: true},
		output,
	)
	m.Notes = Notes(r)
	if sh := r.Shrink; sh != nil {
		// A success that lost entities may be a data loss being backed up:
		// say so before anything else, with both counts.
		m.Color = ColorWarning
		m.Notes = append([]Note{{Label: "Warning", Text: fmt.Sprintf(
			"%s entities, %.1f%% fewer than the %s of the previous successful export %s",
			Count(sh.Entities), sh.Percent(), Count(sh.PreviousEntities), sh.PreviousName)}}, m.Notes...)
	}
	if v := r.Verification; v != nil {
		// What the files hold comes before what the operation said, and an
		// alarm about them before anything else.
		m.Fields = append([]Field{{Title: "Content", Value: VerifiedText(*v)}}, m.Fields...)
		m.Notes = append(verificationNotes(*v), m.Notes...)
		if v.Alarm() {
			m.Color = ColorFailure
		} else if v.TimedOut || len(v.Findings) > 0 {
			m.Color = ColorWarning
		}
	}
	return m
}

// formatStale renders the staleness alarm, which is about no one operation.
// st.Project is the database's scope: the project, or
// "project/databases/id" for a named database.
func formatStale(st poller.Stale, loc *time.Location) Message {
	m := Message{Color: ColorFailure}
	last := None
	what := Name(st.Project)
	if st.Target != "" {
		what = Cut(st.Target, maxTargetInTitle) + " (" + what + ")"
	}
	if st.LastSuccess.Name == "" {
		m.Title = fmt.Sprintf("No Datastore export of %s has succeeded since %s", what, Clock(st.Since, loc))
	} else {
		m.Title = fmt.Sprintf("No Datastore export of %s has succeeded for over %s", what, RoundDuration(st.After))
		last = Clock(st.LastSuccess.At, loc)
	}
	project, database := splitScope(st.Project)
	if st.Target != "" {
		m.Fields = append(m.Fields, Field{Title: "Target", Value: Name(st.Target), Short: true})
	}
	m.Fields = append(m.Fields, Field{Title: "Project", Value: Name(project), Short: true})
	if !poller.IsDefaultDatabase(database) {
		m.Fields = append(m.Fields, Field{Title: "Database", Value: Name(database), Short: true})
	}
	m.Fields = append(m.Fields,
		Field{Title: "Last success", Value: last, Short: true},
		Field{Title: "Last successful operation", Value: OrNone(Name(st.LastSuccess.Name))},
	)
	m.Notes = []Note{
		{Label: "Check", Text: ListCommandIn(project, database), Command: true},
		{Label: "Alarm", Text: "raised once after DSEXPORT_STALE_AFTER without a success; not repeated until an export succeeds"},
	}
	return m
}

// splitScope undoes poller.Scope: "p" is p's (default) database,
// "p/databases/d" its database d.
func splitScope(scope string) (project, database string) {
	if p, d, ok := strings.Cut(scope, "/databases/"); ok {
		return p, d
	}
	return scope, poller.DefaultDatabase
}

// RoundDuration writes d in whole hours when it is some, else as Go does.
func RoundDuration(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return d.String()
}

// Title says in a few words how the export ended, after the name of its
// target when it has one; it is what a notification shows.
func Title(r poller.Report) string {
	if r.Backup != nil {
		return withTarget(r.Backup.Target, BackupTitle(*r.Backup))
	}
	if r.Drill != nil {
		return withTarget(r.Drill.Target, DrillTitle(*r.Drill))
	}
	if v := r.Verification; v != nil && v.Alarm() && r.Outcome == poller.OutcomeSuccess {
		return withTarget(r.Operation.Target, "Datastore export succeeded, but its files are NOT verified")
	}
	return withTarget(r.Operation.Target, outcomeTitle(r))
}

// outcomeTitle is Title without the target.
func outcomeTitle(r poller.Report) string {
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
			return fmt.Sprintf("Datastore export not seen to finish after %d %s", r.Polls, Plural(r.Polls, "poll", "polls"))
		}
		return fmt.Sprintf("Datastore export still running after %d %s", r.Polls, Plural(r.Polls, "poll", "polls"))
	case poller.OutcomeNone:
		// The poller does not report running exports, but a status command
		// may render one; saying so beats claiming an outcome.
		return "Datastore export is running"
	}
	return fmt.Sprintf("Datastore export ended with outcome %q", string(r.Outcome))
}

// Color is the colour of r's report.
func Color(r poller.Report) string {
	if r.Backup != nil {
		return BackupColor(r.Backup.Kind)
	}
	if r.Drill != nil {
		return formatDrill(*r.Drill, time.UTC).Color
	}
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

// Notes lists what the reader needs next. The commands are exact so they can
// be pasted: gcloud takes the full operation name and the output URL as is.
func Notes(r poller.Report) []Note {
	if r.Backup != nil {
		return BackupNotes(*r.Backup)
	}
	op := r.Operation
	if r.StartError != "" {
		// The API's own message names the cause (permissions, quota, a bad
		// bucket); rewording it would only lose detail.
		return withFix([]Note{{Label: "Error", Text: Detail(r.StartError)}}, r.StartError, op.OutputURLPrefix)
	}
	var ns []Note
	switch r.Outcome {
	case poller.OutcomeSuccess:
		if op.OutputURL != "" {
			ns = append(ns, Note{Label: "Restore", Text: RestoreCommand(op), Command: true})
		} else {
			ns = append(ns, Note{Label: "Restore", Text: "the operation reported no output URL; look for the .overall_export_metadata file under " + OrNone(op.OutputURLPrefix)})
		}
		return ns
	case poller.OutcomeFailure:
		ns = withFix(append(ns, Note{Label: "Error", Text: ErrorText(op)}), op.ErrorMessage, op.OutputURLPrefix)
	case poller.OutcomeNone:
		return nil
	default:
		if op.ErrorMessage != "" || op.ErrorCode != 0 {
			ns = append(ns, Note{Label: "Error", Text: ErrorText(op)})
		}
	}
	if r.LastError != "" {
		// The API could not be read at the end: that, not the export, may be the problem.
		ns = append(ns, Note{Label: "Last poll failed", Text: Detail(r.LastError)})
	}
	if op.Name != "" {
		ns = append(ns, Note{Label: "Details", Text: DescribeCommand(op.Name), Command: true})
	}
	return ns
}

// withFix adds to ns the command fixing the refusal message tells of, when
// FixForExport knows it.
func withFix(ns []Note, message, prefix string) []Note {
	if fix, ok := FixForExport(message, prefix); ok {
		ns = append(ns, Note{Label: "Fix", Text: Detail(fix), Command: true})
	}
	return ns
}

// ErrorText is the operation's error message (cut past MaxDetail) followed
// by its google.rpc code, whose name tells at a glance whether it is a
// permission, quota or cancel.
func ErrorText(op poller.Operation) string {
	msg := Detail(op.ErrorMessage)
	if msg == "" {
		msg = "the operation reported no error message"
	}
	if op.ErrorCode == 0 {
		return msg
	}
	return fmt.Sprintf("%s (code %d %s)", msg, op.ErrorCode, CodeName(op.ErrorCode))
}

// CodeName is the name of a google.rpc.Code.
func CodeName(code int) string {
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

func OrNone(s string) string {
	if s == "" {
		return None
	}
	return s
}

func Clock(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return None
	}
	return t.In(loc).Format(TimeLayout)
}

// Duration is end−start; without an end (still running, or never started) the
// length is not known, and the time since the start would go stale in Slack.
func Duration(start, end time.Time) string {
	if start.IsZero() || end.IsZero() {
		return None
	}
	return end.Sub(start).Round(time.Second).String()
}

// entities shows completed of estimated: completed may exceed the estimate,
// and an estimate of 0 means there is none.
func entities(completed, estimated int64) string {
	if estimated > 0 {
		return Count(completed) + " of " + Count(estimated)
	}
	return Count(completed)
}

// ByteSize shows a size in binary units for reading, and exactly for checking
// against the bucket.
func ByteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return Count(n) + " " + Plural(int(n), "byte", "bytes")
	}
	v := float64(n)
	i := -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB (%s bytes)", v, "KMGTPE"[i], Count(n))
}

// Count writes n with comma separators: 21933027 is 21,933,027.
func Count(n int64) string {
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

// DefaultNamespace names the empty namespace, which would otherwise be invisible.
func DefaultNamespace(s string) string {
	if s == "" {
		return "(default)"
	}
	return s
}

func Plural(n int, one, many string) string {
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
	m := Message{Title: withTarget(op.Target, "Datastore export started"), Color: ColorProgress}
	m.Fields = append(identity(op, loc),
		Field{Title: "Started", Value: Clock(op.StartTime, loc), Short: true},
		Field{Title: "Kinds", Value: List(op.Kinds, nil), Short: true},
		Field{Title: "Namespaces", Value: List(op.Namespaces, DefaultNamespace), Short: true},
		Field{Title: "Output prefix", Value: OrNone(op.OutputURLPrefix)},
	)
	m.Notes = runningNotes(r)
	return m
}

// FormatProgress renders a running export's latest snapshot, as of now: how
// far it got against the Admin API's estimates, how long it has run, and
// how often it was read.
func FormatProgress(r poller.Report, loc *time.Location, now time.Time) Message {
	loc = orUTC(loc)
	op := r.Operation
	m := Message{Title: withTarget(op.Target, "Datastore export running"), Color: ColorProgress}
	m.Fields = append(identity(op, loc),
		Field{Title: "Elapsed", Value: Elapsed(op.StartTime, now), Short: true},
		Field{Title: "Started", Value: Clock(op.StartTime, loc), Short: true},
		Field{Title: "Updated", Value: Clock(now, loc), Short: true},
		Field{Title: "Entities exported", Value: Progress(op.EntitiesCompleted, op.EntitiesEstimated, Count), Short: true},
		Field{Title: "Bytes exported", Value: Progress(op.BytesCompleted, op.BytesEstimated, Bytes), Short: true},
		Field{Title: "Polls", Value: strconv.Itoa(r.Polls), Short: true},
		Field{Title: "Kinds", Value: List(op.Kinds, nil), Short: true},
		Field{Title: "Namespaces", Value: List(op.Namespaces, DefaultNamespace), Short: true},
		Field{Title: "Output prefix", Value: OrNone(op.OutputURLPrefix)},
	)
	m.Notes = runningNotes(r)
	return m
}

// runningNotes are the notes of a running export: a failed last read, and
// the command that shows the operation as Google sees it.
func runningNotes(r poller.Report) []Note {
	var ns []Note
	if r.LastError != "" {
		ns = append(ns, Note{Label: "Last poll failed", Text: Detail(r.LastError)})
	}
	if r.Operation.Name != "" {
		ns = append(ns, Note{Label: "Details", Text: DescribeCommand(r.Operation.Name), Command: true})
	}
	return ns
}

// Headline is the report in one line, for a notification: the title, the
// project, and the fact that matters most (the size of a success, the error
// of a failure). Times are in loc (UTC when nil).
func Headline(r poller.Report, loc *time.Location) string {
	if r.Backup != nil {
		return backupHeadline(*r.Backup, orUTC(loc))
	}
	if r.Stale != nil {
		return formatStale(*r.Stale, orUTC(loc)).Title
	}
	if r.Drill != nil {
		return drillHeadline(*r.Drill)
	}
	line := Title(r)
	if s := ScopeOf(r); s != "" {
		line += " (" + Name(s) + ")"
	}
	op := r.Operation
	switch {
	case r.StartError != "":
		return line + " — " + Detail(r.StartError)
	case r.Outcome == poller.OutcomeFailure:
		return line + " — " + ErrorText(op)
	}
	word := "entities"
	if op.EntitiesCompleted == 1 {
		word = "entity"
	}
	size := Count(op.EntitiesCompleted) + " " + word + ", " + Bytes(op.BytesCompleted)
	if sh := r.Shrink; sh != nil {
		size += fmt.Sprintf(" (%.1f%% fewer entities than the previous export)", sh.Percent())
	}
	if v := r.Verification; v != nil {
		// The files' own count replaces the operation's, which the
		// emulator and some exports leave at 0.
		size = VerifiedText(*v)
	}
	return line + " — " + size
}

// Progress shows completed against an estimate, with the share done as
// Percent writes it. The estimate is Google's guess: 0 means there is none
// yet, and completed may pass it.
func Progress(completed, estimated int64, unit func(int64) string) string {
	if estimated <= 0 {
		return unit(completed) + " (" + NoEstimate + ")"
	}
	return unit(completed) + " of ~" + unit(estimated) + " (" + Percent(completed, estimated) + ")"
}

// Elapsed is the time from start to now in whole seconds; a clock behind
// the start time shows 0s rather than a negative duration.
func Elapsed(start, now time.Time) string {
	if start.IsZero() {
		return None
	}
	return max(now.Sub(start), 0).Round(time.Second).String()
}

// Bytes writes n in binary units with one decimal ("11.6 GiB"), without
// the exact count, for a progress line.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return Count(n) + " B"
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// RestoreCommand imports op's export: its metadata file through the
// Datastore Admin API, or its folder into its database through the
// Firestore Admin API (an export of a named database, or of (default) made
// through that API).
func RestoreCommand(op poller.Operation) string {
	if poller.IsFirestoreName(op.Name) || !poller.IsDefaultDatabase(op.Database) {
		return "gcloud firestore import " + op.OutputURL + " --project=" + op.ProjectID() + " --database=" + shellWord(op.DatabaseOf())
	}
	return "gcloud datastore import " + op.OutputURL
}

// DescribeCommand shows the operation name as Google sees it: a Firestore
// Admin API name (it holds the database) through gcloud firestore.
func DescribeCommand(name string) string {
	if poller.IsFirestoreName(name) {
		return "gcloud firestore operations describe " + name
	}
	return "gcloud datastore operations describe " + name
}

// shellWord quotes "(default)" for a shell; database ids need no quoting.
func shellWord(s string) string {
	if s == poller.DefaultDatabase {
		return "'" + s + "'"
	}
	return s
}

// ListCommand lists the operations of project.
func ListCommand(project string) string {
	return "gcloud datastore operations list --project=" + project
}

// ListCommandIn lists the operations of project's database: through the
// Firestore Admin API for a named one, whose operations the Datastore
// Admin API does not list.
func ListCommandIn(project, database string) string {
	if poller.IsDefaultDatabase(database) {
		return ListCommand(project)
	}
	return "gcloud firestore operations list --project=" + project + " --database=" + shellWord(database)
}

// identity is the fields every message about op starts with: which export
// of which target, project and database, and where it stands; for a
// consistent export, the point in time it holds.
func identity(op poller.Operation, loc *time.Location) []Field {
	var fs []Field
	if op.Target != "" {
		fs = append(fs, Field{Title: "Target", Value: Name(op.Target), Short: true})
	}
	fs = append(fs, Field{Title: "Project", Value: OrNone(op.ProjectID()), Short: true})
	if db := op.DatabaseOf(); !poller.IsDefaultDatabase(db) {
		fs = append(fs, Field{Title: "Database", Value: Name(db), Short: true})
	}
	fs = append(fs,
		Field{Title: "Trigger", Value: OrNone(string(op.Trigger)), Short: true},
		Field{Title: "Operation", Value: OrNone(op.Name)},
		Field{Title: "State", Value: OrNone(string(op.State)), Short: true},
	)
	if !op.SnapshotTime.IsZero() {
		fs = append(fs, Field{Title: "Consistent as of", Value: Clock(op.SnapshotTime, loc), Short: true})
	}
	return fs
}
