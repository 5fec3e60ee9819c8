package poller

import (
	"context"
	"time"
)

// Verification is the content check of one successful export: what its
// files hold (Content, read by a ContentReader), what the source database
// held when it was checked (Source), and what disagrees (Findings). It is
// recorded per target (VerificationStore) so that the next export is
// compared with it and a drill restores a verified export.
type Verification struct {
	// Operation is the export checked, Target its configured target (""
	// the environment's single one); Project and Database are its database.
	Operation string
	Target    string
	Project   string
	Database  string
	// OutputURL is the export's .overall_export_metadata (what an import takes).
	OutputURL string
	// At is when the check ended; ExportTime is the point in time the
	// export holds (its SnapshotTime, else the operation's end), which a
	// drill's RPO is measured from.
	At         time.Time
	ExportTime time.Time
	// Content is what the files hold; it is meaningful when Error is "".
	Content Content
	// Source is the source database's entities per "namespace/kind",
	// counted after the export (nil: not counted); SourceError says why
	// they were not.
	Source      map[string]int64
	SourceError string
	// Findings are CheckContent's, with the read's failure first when the
	// files could not be read (ContentUnreadable).
	Findings []ContentFinding
	// Error is why the files could not be read: a missing metadata object,
	// a corrupt output file, a listing that failed. TimedOut is set when
	// the read was cut by its time bound instead: the export is then not
	// verified, which is no evidence against it.
	Error    string
	TimedOut bool
}

// Verified tells whether the export's files were read and nothing that
// raises an alarm was found.
func (v Verification) Verified() bool {
	return v.Error == "" && !v.TimedOut && !v.Alarm()
}

// Alarm tells whether the check found what makes the report an alarm: an
// unreadable export (not one cut by time), an empty one, a kind gone.
func (v Verification) Alarm() bool {
	if v.Error != "" && !v.TimedOut {
		return true
	}
	for _, f := range v.Findings {
		if f.Rule.Alarm() {
			return true
		}
	}
	return false
}

// Alarm tells whether a finding of rule raises an alarm. An operation's or
// the source's count that differs is a warning: the source changes while
// an export that is not one point in time runs, and the API's progress
// counters are estimates.
func (r ContentRule) Alarm() bool {
	switch r {
	case ContentEmpty, ContentKindGone, ContentUnreadable:
		return true
	}
	return false
}

// ContentUnreadable: the export's metadata object or output files could
// not be read (missing, corrupt, truncated).
const ContentUnreadable ContentRule = "unreadable"

// MaxStoredKinds bounds the kinds a Verification (and a Drill) keeps: a
// store entity holds at most 1 MiB. Beyond it, the rest are summed under
// CutKind.
const MaxStoredKinds = 500

// MaxFindings bounds the findings kept and reported.
const MaxFindings = 50

// Bounded is v cut to what a store entity and a report hold: MaxStoredKinds
// kinds (the rest summed under CutKind), as many source counts, MaxFindings
// findings, texts bounded.
func (v Verification) Bounded() Verification {
	v.Content.Kinds, v.Content.KindsCut = boundKinds(v.Content.Kinds, v.Content.KindsCut)
	if len(v.Source) > MaxStoredKinds {
		// Only the kinds kept are compared again; the rest are dropped.
		kept := make(map[string]int64, MaxStoredKinds)
		for _, k := range v.Content.Kinds {
			key := k.Namespace + "/" + k.Kind
			if n, ok := v.Source[key]; ok && len(kept) < MaxStoredKinds {
				kept[key] = n
			}
		}
		v.Source = kept
	}
	v.SourceError = BoundText(v.SourceError, MaxErrorText)
	v.Error = BoundText(v.Error, MaxErrorText)
	v.Findings = boundFindings(v.Findings)
	return v
}

// boundKinds keeps the first MaxStoredKinds-1 kinds and sums the rest under
// CutKind.
func boundKinds(kinds []KindCount, cut bool) ([]KindCount, bool) {
	if len(kinds) <= MaxStoredKinds {
		return kinds, cut
	}
	out := append([]KindCount(nil), kinds[:MaxStoredKinds-1]...)
	rest := KindCount{Kind: CutKind}
	for _, k := range kinds[MaxStoredKinds-1:] {
		rest.Entities += k.Entities
	}
	return append(out, rest), true
}

func boundFindings(fs []ContentFinding) []ContentFinding {
	if len(fs) > MaxFindings {
		fs = fs[:MaxFindings]
	}
	out := make([]ContentFinding, len(fs))
	for i, f := range fs {
		f.Kind = BoundText(f.Kind, MaxKind)
		f.Namespace = BoundText(f.Namespace, MaxNamespace)
		f.Text = BoundText(f.Text, MaxErrorText)
		out[i] = f
	}
	return out
}

// KindNames is the number of kinds of the content, in any namespace (a
// cut entry not counted).
func (c Content) KindNames() int {
	n := 0
	seen := map[string]bool{}
	for _, k := range c.Kinds {
		if k.Kind != CutKind && !seen[k.Kind] {
			seen[k.Kind] = true
			n++
		}
	}
	return n
}

// VerifiedState is what the store keeps of a target's verifications: the
// latest (whatever it found) and the latest that Verified.
type VerifiedState struct {
	Target string
	Latest *Verification
	Good   *Verification
}

// ContentReader reads what an export's files hold (content.Reader): the
// entities of database in the export at outputURL.
type ContentReader interface {
	ReadDatabase(ctx context.Context, outputURL, database string) (Content, error)
}

// Counter counts the entities of one kind in one namespace of a database
// (a COUNT aggregation; count.Counter).
type Counter interface {
	Count(ctx context.Context, project, database, namespace, kind string) (int64, error)
}

// VerificationStore keeps each export's verification and what each target
// knows of them (store.Store, memstore.Store).
type VerificationStore interface {
	// VerifiedState returns what is kept of target's verifications; a zero
	// state naming target when there is none.
	VerifiedState(ctx context.Context, target string) (VerifiedState, error)
	// VerificationOf returns the verification recorded for operation; nil
	// when there is none.
	VerificationOf(ctx context.Context, operation string) (*Verification, error)
	// RecordVerification records v as its operation's verification and
	// moves its target's state on as NextVerifiedState says, in one
	// transaction. An operation's verification, once recorded, stays:
	// recording another for it changes nothing.
	RecordVerification(ctx context.Context, v Verification, at time.Time) error
}

// NextVerifiedState is st once v is recorded: v becomes the Latest unless
// the Latest holds a later export (a report sent late, a check run by hand
// of an old export), and the Good when it verified, unless the Good holds a
// later export. changed is false when st stays as it is.
func NextVerifiedState(st VerifiedState, v Verification) (next VerifiedState, changed bool) {
	later := func(cur *Verification) bool {
		return cur == nil || (cur.Operation != v.Operation && !v.ExportTime.Before(cur.ExportTime))
	}
	if later(st.Latest) {
		st.Latest, changed = &v, true
	}
	if v.Verified() && later(st.Good) {
		st.Good, changed = &v, true
	}
	return st, changed
}
