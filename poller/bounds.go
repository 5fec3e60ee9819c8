package poller

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The bounds of what dsexport keeps of an operation, in bytes. An Admin API
// answer can hold strings of any size (a proxy's 20 MB error page, a hostile
// or broken answer); Datastore takes at most 1 MiB per entity and 1,500 bytes
// per indexed string, Slack and Cloud Logging have their own limits. So
// everything from the API is cut to these bounds before it is stored or
// reported, and the cut is said in the text (BoundText).
const (
	// MaxErrorText bounds an error message: the API's (an operation's
	// error.message, an HTTP error body) and the text of a failed poll.
	// Google's messages are a sentence or two (the failed wire sample's is
	// 170 bytes); 2 KiB keeps any real one whole and, with the restore or
	// describe command beside it, fits one Slack section (3,000 characters).
	MaxErrorText = 2048
	// MaxObjectName is Cloud Storage's limit on an object name.
	MaxObjectName = 1024
	// MaxURL bounds a gs:// URL (output prefix, output URL): gs://, a
	// bucket of at most 222 bytes, /, and an object name. Longer cannot be a
	// Cloud Storage object.
	MaxURL = len("gs://") + 222 + 1 + MaxObjectName
	// MaxName bounds an operation name (a Datastore key name holds 1,500
	// bytes at most); MaxProject a project ID, as ValidateProject does.
	MaxName    = 1500
	MaxProject = 100
	// MaxKind is Datastore's limit on a kind name, and the limit of an
	// indexed string; MaxNamespace is the namespace grammar's length.
	MaxKind      = 1500
	MaxNamespace = 100
	// MaxListItems bounds the kinds and the namespaces: an export request
	// holds at most MaxFilterCombinations kind × namespace pairs.
	MaxListItems = MaxFilterCombinations
	// MaxLabel bounds a state or a trigger: a Google label value holds at
	// most 63 characters, and the states are shorter.
	MaxLabel = 63
)

// maxQuoted bounds a name or value quoted in an error message.
const maxQuoted = 256

// BoundText returns s as it is when it has at most max bytes. A longer s is
// cut at a UTF-8 boundary and ends with " … [cut: N bytes in all]", the
// whole within max bytes, so a reader sees that it was cut and how much
// there was.
func BoundText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return CutText(s, max, " … [cut: "+strconv.Itoa(len(s))+" bytes in all]")
}

// CutText returns s ending with note, s shortened at a UTF-8 boundary so
// that the whole has at most max bytes; when max cannot hold the note, the
// note alone is shortened. It is for a text known to be cut (a body read
// only in part), whose note says so.
func CutText(s string, max int, note string) string {
	if len(note) >= max {
		return prefix(note, max)
	}
	return prefix(s, max-len(note)) + note
}

// prefix is at most n bytes of s, not cutting a UTF-8 sequence in two.
func prefix(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	// Back up over at most one sequence's continuation bytes; invalid UTF-8
	// is cut where it is.
	i := n
	for j := 0; j < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	if !utf8.RuneStart(s[i]) {
		i = n
	}
	return s[:i]
}

// Bounded returns op with every string and list within the bounds above,
// cut with the cut said. Whatever Admin adapter gave op, the poller bounds
// it before it is stored or reported. Check an answer's name (CheckAnswer)
// first: a cut name is never the one asked for.
func (op Operation) Bounded() Operation {
	op.Name = BoundText(op.Name, MaxName)
	op.Project = BoundText(op.Project, MaxProject)
	op.Database = BoundText(op.Database, MaxLabel)
	op.Target = BoundText(op.Target, MaxLabel)
	op.State = State(BoundText(string(op.State), MaxLabel))
	op.Trigger = Trigger(BoundText(string(op.Trigger), MaxLabel))
	op.Kinds = boundList(op.Kinds, MaxKind, "kinds")
	op.Namespaces = boundList(op.Namespaces, MaxNamespace, "namespaces")
	op.OutputURLPrefix = BoundText(op.OutputURLPrefix, MaxURL)
	op.OutputURL = BoundText(op.OutputURL, MaxURL)
	op.ErrorMessage = BoundText(op.ErrorMessage, MaxErrorText)
	return op
}

// boundList bounds each item to maxItem bytes, and a list longer than
// MaxListItems to its first items and a last one saying how many there
// were ("… [cut: 250 kinds in all]"). A list within the bounds is returned
// as it is, not copied.
func boundList(items []string, maxItem int, what string) []string {
	within := len(items) <= MaxListItems
	for _, it := range items {
		within = within && len(it) <= maxItem
	}
	if within {
		return items
	}
	n := min(len(items), MaxListItems)
	if len(items) > MaxListItems {
		n--
	}
	out := make([]string, 0, n+1)
	for _, it := range items[:n] {
		out = append(out, BoundText(it, maxItem))
	}
	if len(items) > n {
		out = append(out, fmt.Sprintf("… [cut: %d %s in all]", len(items), what))
	}
	return out
}

// ErrForeignAnswer is wrapped by CheckAnswer's error: the API answered with
// an operation other than the one asked for (another name, another
// project). Such an answer is a failed read, never a result: taken as ours
// it would report someone else's outcome and output URL.
var ErrForeignAnswer = errors.New("the answer is about another operation")

// CheckAnswer checks that op, the API's answer to reading the operation
// asked (projects/{project}/operations/{id}), is about that operation: its
// name, a full one or gcloud's bare id (QualifyName), must be asked, and
// its project asked's. An answer without a name or project is taken as
// asked's, as the adapters fill them in. The error wraps ErrForeignAnswer,
// or is ParseName's when asked itself is no operation name.
func CheckAnswer(asked string, op Operation) error {
	project, err := ParseName(asked)
	if err != nil {
		return err
	}
	if op.Name != "" {
		name, err := QualifyName(project, op.Name)
		if err != nil || name != asked {
			return fmt.Errorf("asked for %s, the API answered with %s: %w", quote(asked), quote(op.Name), ErrForeignAnswer)
		}
	}
	if op.Project != "" && op.Project != project {
		return fmt.Errorf("asked for %s, the API answered with one of project %s: %w", quote(asked), quote(op.Project), ErrForeignAnswer)
	}
	return nil
}

// CheckStarted checks that op, the API's answer to starting an export in
// project, is an operation of that project: its name, when it has one (the
// Datastore emulator gives none), must be projects/{project}/operations/{id},
// and its project field project's. The error wraps ErrForeignAnswer.
func CheckStarted(project, database string, op Operation) error {
	if op.Name != "" {
		p, db, err := ParseNameIn(op.Name)
		if err != nil || p != project || (db != "" && dbOf(db) != dbOf(database)) || (db == "" && !IsDefaultDatabase(database)) {
			return fmt.Errorf("started an export of %s, the API answered with %s: %w", quote(Scope(project, database)), quote(op.Name), ErrForeignAnswer)
		}
	}
	if op.Database != "" && dbOf(op.Database) != dbOf(database) {
		return fmt.Errorf("started an export of %s, the API answered with one of database %s: %w", quote(Scope(project, database)), quote(op.Database), ErrForeignAnswer)
	}
	if op.Project != "" && op.Project != project {
		return fmt.Errorf("started an export in %s, the API answered with one of project %s: %w", quote(project), quote(op.Project), ErrForeignAnswer)
	}
	return nil
}

// quote is s quoted for an error message, bounded first: a name or value
// from outside may be of any size.
func quote(s string) string {
	return strconv.Quote(BoundText(s, maxQuoted))
}
