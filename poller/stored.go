package poller

import (
	"encoding/json"
	"fmt"
	"time"
)

// The bounds of what the stores keep of drills and verifications: a
// Datastore entity holds at most 1 MiB. A target's verified state holds two
// verifications; a drill is one entity.
const (
	MaxDrillJSON        = 900 << 10
	MaxVerificationJSON = 480 << 10
)

// storedTime is t as Datastore gives it back: UTC, whole microseconds.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// StoredDrill is d as the stores keep it, and its JSON: every text
// bounded, at most MaxStoredKinds expected and counted kinds (the rest
// summed under CutKind), MaxFindings findings, times as Datastore
// gives them back, and the kind lists halved further until the whole fits
// an entity, when their names are long. store.Store and memstore.Store
// both keep this, so that the two answer alike.
func StoredDrill(d Drill) (Drill, string, error) {
	d.Target = BoundText(d.Target, MaxName)
	d.Project = BoundText(d.Project, MaxProject)
	d.Database = BoundText(d.Database, MaxLabel)
	d.Trigger = Trigger(BoundText(string(d.Trigger), MaxLabel))
	d.Step = DrillStep(BoundText(string(d.Step), MaxLabel))
	d.Export = BoundText(d.Export, MaxName)
	d.InputURL = BoundText(d.InputURL, MaxURL)
	d.Kinds = boundStrings(d.Kinds, MaxKind)
	d.Expected = boundKindNames(cutKinds(d.Expected, MaxStoredKinds))
	d.Counted = boundKindNames(cutKinds(d.Counted, MaxStoredKinds))
	d.ScratchProject = BoundText(d.ScratchProject, MaxProject)
	d.ScratchDatabase = BoundText(d.ScratchDatabase, MaxLabel)
	d.Location = BoundText(d.Location, MaxLabel)
	d.CreateOp = BoundText(d.CreateOp, MaxName)
	d.ImportOp = BoundText(d.ImportOp, MaxName)
	// A verification's bounds are the findings' (their count and texts).
	if d.Findings != nil {
		d.Findings = Verification{Findings: d.Findings}.Bounded().Findings
	}
	d.Outcome = DrillOutcome(BoundText(string(d.Outcome), MaxLabel))
	d.FailedStep = DrillStep(BoundText(string(d.FailedStep), MaxLabel))
	d.Error = BoundText(d.Error, MaxErrorText)
	d.DeleteError = BoundText(d.DeleteError, MaxErrorText)
	d.LeaseHolder = BoundText(d.LeaseHolder, MaxName)
	for _, t := range []*time.Time{&d.Began, &d.ExportTime, &d.CreateStart, &d.ImportStart, &d.ImportEnd,
		&d.Ended, &d.ReportedAt, &d.Updated, &d.LeaseExpires} {
		*t = storedTime(*t)
	}
	for n := max(len(d.Expected), len(d.Counted)); ; n /= 2 {
		b, err := json.Marshal(d)
		if err != nil {
			return d, "", err
		}
		if len(b) <= MaxDrillJSON || n <= 1 {
			return d, string(b), nil
		}
		d.Expected, d.Counted = cutKinds(d.Expected, n/2), cutKinds(d.Counted, n/2)
	}
}

// boundStrings is items with at most MaxListItems items (a last one
// saying how many there were), each of at most maxItem bytes.
func boundStrings(items []string, maxItem int) []string {
	if items == nil {
		return nil
	}
	n := len(items)
	if n > MaxListItems {
		n = MaxListItems - 1
	}
	out := make([]string, 0, n+1)
	for _, it := range items[:n] {
		out = append(out, BoundText(it, maxItem))
	}
	if n < len(items) {
		out = append(out, fmt.Sprintf("… [cut: %d kinds in all]", len(items)))
	}
	return out
}

// StoredVerification is v as the stores keep it, and its JSON: bounded
// (Verification.Bounded), its names and URLs bounded too, its times as
// Datastore gives them back (UTC, whole microseconds), and its kinds cut
// further, halved until it fits its half of an entity, when their names
// are long. store.Store and memstore.Store both keep
// this, so that the two answer alike.
func StoredVerification(v Verification) (Verification, string, error) {
	v = v.Bounded()
	v.Operation = BoundText(v.Operation, MaxName)
	v.Project = BoundText(v.Project, MaxProject)
	v.Database = BoundText(v.Database, MaxLabel)
	v.OutputURL = BoundText(v.OutputURL, MaxURL)
	v.At, v.ExportTime = storedTime(v.At), storedTime(v.ExportTime)
	v.Content.MetadataURL = BoundText(v.Content.MetadataURL, MaxURL)
	v.Content.Database = BoundText(v.Content.Database, MaxLabel)
	v.Content.Kinds = boundKindNames(v.Content.Kinds)
	// Bounded keeps at most MaxStoredKinds source counts but not their
	// keys' length: a key longer than any kind's is no kind's, and dropped.
	if v.Source != nil {
		source := make(map[string]int64, len(v.Source))
		for k, n := range v.Source {
			if len(k) <= MaxNamespace+1+MaxKind {
				source[k] = n
			}
		}
		v.Source = source
	}
	for n := len(v.Content.Kinds); ; n /= 2 {
		b, err := json.Marshal(v)
		if err != nil {
			return v, "", err
		}
		if len(b) <= MaxVerificationJSON || n <= 1 {
			return v, string(b), nil
		}
		v.Content.Kinds, v.Content.KindsCut = cutKinds(v.Content.Kinds, n/2), true
		kept := make(map[string]int64)
		for _, k := range v.Content.Kinds {
			if c, ok := v.Source[k.Namespace+"/"+k.Kind]; ok {
				kept[k.Namespace+"/"+k.Kind] = c
			}
		}
		if v.Source != nil {
			v.Source = kept
		}
	}
}

// boundKindNames is kinds with each namespace and kind name bounded.
func boundKindNames(kinds []KindCount) []KindCount {
	if kinds == nil {
		return nil
	}
	out := make([]KindCount, len(kinds))
	for i, k := range kinds {
		k.Namespace = BoundText(k.Namespace, MaxNamespace)
		k.Kind = BoundText(k.Kind, MaxKind)
		out[i] = k
	}
	return out
}

// cutKinds keeps the first n-1 of kinds (n at least 1) and sums the rest
// under CutKind, as Verification.Bounded does with MaxStoredKinds.
func cutKinds(kinds []KindCount, n int) []KindCount {
	n = max(n, 1)
	if len(kinds) <= n {
		return kinds
	}
	out := append([]KindCount(nil), kinds[:n-1]...)
	rest := KindCount{Kind: CutKind}
	for _, k := range kinds[n-1:] {
		rest.Entities += k.Entities
	}
	return append(out, rest)
}
