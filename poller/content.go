package poller

import (
	"fmt"
	"sort"
	"strings"
)

// Content is what a finished export holds, measured from its files in Cloud
// Storage (package content reads them): not what the operation said, but
// the entities found in the output files' records.
type Content struct {
	// MetadataURL is the export's .overall_export_metadata object, found and
	// readable; Database the database whose entities are counted.
	MetadataURL string
	Database    string
	// Objects is the number of objects under the export's folder, Bytes
	// their total size; Files the output files among them (output-N).
	Objects int
	Files   int
	Bytes   int64
	// Kinds are the entities per namespace and kind, sorted by namespace
	// then kind; when there are more kinds than a reader keeps, KindsCut is
	// set and the rest are summed in a last entry whose Kind is CutKind.
	Kinds    []KindCount
	KindsCut bool
	// Entities is the sum of Kinds: the entities of Database.
	Entities int64
	// OtherDatabases counts the records whose key names another database
	// of the project. A real export holds one database; the Datastore
	// emulator's export writes the entities of all the project's databases
	// into it, so these are kept apart, not counted in Entities.
	OtherDatabases int64
}

// KindCount is the number of entities of one kind in one namespace ("": the
// default namespace).
type KindCount struct {
	Namespace, Kind string
	Entities        int64
}

// CutKind is the Kind of the entry that sums the kinds beyond a reader's
// bound (Content.KindsCut). Parentheses cannot start a kind a client writes:
// kinds matching __.*__ are reserved, and this one is not a valid key in
// any namespace's statistics.
const CutKind = "(more kinds)"

// ContentRule names what a ContentFinding is about.
type ContentRule string

const (
	// ContentEmpty: no output file, or no entity in them.
	ContentEmpty ContentRule = "empty"
	// ContentKindGone: a kind of the previous export is not in this one.
	ContentKindGone ContentRule = "kind-gone"
	// ContentOperationCount: the operation's own entity count is not the
	// files' count.
	ContentOperationCount ContentRule = "operation-count"
	// ContentSourceCount: the source database's count of a kind is not the
	// files' count.
	ContentSourceCount ContentRule = "source-count"
)

// ContentFinding is one disagreement between an export's content and what it
// should hold. Kind and Namespace name the kind it is about ("" for the
// whole export); Expected is what should be there, Got what the files hold.
type ContentFinding struct {
	Rule            ContentRule
	Kind, Namespace string
	Expected, Got   int64
	Text            string
}

// CheckContent compares an export's content with what it should hold: the
// operation that wrote it (op.EntitiesCompleted, when the API gave it), the
// previous export of the same target (previous, nil: none) and the source
// database's counts (source: entities per "namespace/kind", nil: not
// counted). The findings are in a stable order: empty, operation, kinds
// gone, source counts, each group sorted by namespace and kind.
//
// A kind that may be hidden in a cut entry (c.KindsCut) is not reported as
// gone or short: the files' count of it is not known.
func CheckContent(c Content, op Operation, previous *Content, source map[string]int64) []ContentFinding {
	var out []ContentFinding
	if c.Files == 0 || c.Entities == 0 {
		out = append(out, ContentFinding{Rule: ContentEmpty, Got: c.Entities,
			Text: fmt.Sprintf("The export holds no entity: %d entities in %d output files.", c.Entities, c.Files)})
	}
	if op.EntitiesCompleted != 0 && op.EntitiesCompleted != c.Entities {
		out = append(out, ContentFinding{Rule: ContentOperationCount, Expected: op.EntitiesCompleted, Got: c.Entities,
			Text: fmt.Sprintf("The operation says it exported %d entities; its files hold %d.", op.EntitiesCompleted, c.Entities)})
	}
	count := func(namespace, kind string) (int64, bool) {
		for _, k := range c.Kinds {
			if k.Namespace == namespace && k.Kind == kind {
				return k.Entities, true
			}
		}
		return 0, false
	}
	if previous != nil {
		for _, k := range previous.Kinds {
			if k.Kind == CutKind {
				continue
			}
			if _, ok := count(k.Namespace, k.Kind); ok || c.KindsCut {
				continue
			}
			out = append(out, ContentFinding{Rule: ContentKindGone, Kind: k.Kind, Namespace: k.Namespace,
				Expected: k.Entities,
				Text: fmt.Sprintf("Kind %s%s had %d entities in the previous export and is not in this one.",
					quoteKind(k.Kind), inNamespace(k.Namespace), k.Entities)})
		}
	}
	keys := make([]string, 0, len(source))
	for key := range source {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		// A namespace holds no "/" (its grammar is [0-9A-Za-z._-]); a kind
		// may, so the first "/" ends the namespace.
		namespace, kind, _ := strings.Cut(key, "/")
		want := source[key]
		got, ok := count(namespace, kind)
		if got == want || (!ok && c.KindsCut) {
			continue
		}
		out = append(out, ContentFinding{Rule: ContentSourceCount, Kind: kind, Namespace: namespace,
			Expected: want, Got: got,
			Text: fmt.Sprintf("Kind %s%s has %d entities in the database; the export's files hold %d.",
				quoteKind(kind), inNamespace(namespace), want, got)})
	}
	return out
}

func quoteKind(kind string) string {
	return fmt.Sprintf("%q", BoundText(kind, maxQuoted))
}

func inNamespace(namespace string) string {
	if namespace == "" {
		return ""
	}
	return fmt.Sprintf(" in namespace %q", BoundText(namespace, maxQuoted))
}
