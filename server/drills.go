package server

import (
	"context"
	"fmt"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// This file is each target's content verifications and restore drills, as
// its row on the status page, its own page and /api/targets show them.

// targetChecks is what the stores keep of a target's verifications and
// drills, and how they are judged at one instant.
type targetChecks struct {
	// Verified is the target's verified state; nil when there is no
	// verification store or the target has no export to verify.
	Verified *poller.VerifiedState
	// DrillRead says the target's latest drill was read: it has a drill
	// and there is a drill store. Drill is that drill, nil when it has had
	// none; DrillBadge its badge.
	DrillRead  bool
	Drill      *poller.Drill
	DrillBadge present.Badge
}

// readChecks reads t's verified state and latest drill from the stores
// that are configured, and judges the drill at now.
func (s *Server) readChecks(ctx context.Context, t poller.Target, now time.Time) (targetChecks, error) {
	var c targetChecks
	if s.cfg.Verifications != nil && t.Export != nil {
		vs, err := s.cfg.Verifications.VerifiedState(ctx, t.Name)
		if err != nil {
			return c, fmt.Errorf("verifications of target %q: %w", t.Name, err)
		}
		c.Verified = &vs
	}
	if s.cfg.Drills != nil && t.Drill != nil {
		d, ok, err := s.cfg.Drills.LatestDrill(ctx, t.Name)
		if err != nil {
			return c, fmt.Errorf("drills of target %q: %w", t.Name, err)
		}
		c.DrillRead = true
		if ok {
			c.Drill = &d
		}
		c.DrillBadge = drillBadge(t.Drill.Every, c.Drill, c.good(), now)
	}
	return c, nil
}

// good is the target's latest verification that verified, nil without one.
func (c targetChecks) good() *poller.Verification {
	if c.Verified == nil {
		return nil
	}
	return c.Verified.Good
}

// failed is the target's latest verification when it is not the good one:
// the latest check did not verify (an alarm, or a read cut by time).
func (c targetChecks) failed() *poller.Verification {
	if c.Verified == nil || c.Verified.Latest == nil {
		return nil
	}
	l, g := c.Verified.Latest, c.Verified.Good
	if g != nil && g.Operation == l.Operation {
		return nil
	}
	return l
}

// alarms are the badges of what is wrong with the target's checks, shown
// beside its freshness badge as a stale target's is: a latest verification
// that raised an alarm, a drill that failed or is overdue.
func (c targetChecks) alarms() []present.Badge {
	var out []present.Badge
	if f := c.failed(); f != nil && f.Alarm() {
		out = append(out, present.VerifiedBadge(f))
	}
	if c.DrillRead && c.DrillBadge.Class == "bad" {
		out = append(out, c.DrillBadge)
	}
	return out
}

// drillOverdue tells whether a target whose drill runs every every, and
// whose latest drill is d (nil: none yet), is overdue for lack of any
// drill: its latest verified export, good, has waited for one longer than
// every. Without a verified export there is nothing to restore, so no
// drill can be due; a target that has had a drill is judged by
// present.DrillBadge.
func drillOverdue(every time.Duration, d *poller.Drill, good *poller.Verification, now time.Time) bool {
	return every > 0 && d == nil && good != nil && now.Sub(good.At) > every
}

// drillBadge is the badge of a target's last drill: present.DrillBadge's,
// or overdue when the target has had no drill that it waits for
// (drillOverdue).
func drillBadge(every time.Duration, d *poller.Drill, good *poller.Verification, now time.Time) present.Badge {
	if drillOverdue(every, d, good, now) {
		return present.DrillOverdueBadge()
	}
	return present.DrillBadge(d, every, now)
}

// verifiedCell is the "Last verified export" cell of a target's row.
type verifiedCell struct {
	// Shown says the verifications were read; without, the cell is None.
	Shown bool
	// Good is the latest verified export; Failed the latest check when it
	// did not verify.
	Good, Failed *checkedExport
}

// checkedExport is one verification as the cell shows it.
type checkedExport struct {
	ID, Name, Link string
	At, AtISO      string
	Text           string
	// TextClass is "warning" for a check that raised an alarm.
	TextClass string
	Badge     present.Badge
}

// drillCell is the "Last drill" cell of a target's row.
type drillCell struct {
	// Configured says the target has a drill; Shown that its drills were
	// read (without a store, the cell is None).
	Configured, Shown bool
	Badge             present.Badge
	// Every is the drill's period, "7 days".
	Every string
	// Title, At (its end, or its start while it runs), RTO, RPO and Error
	// are the latest drill's; Title is "" when there is none.
	Title, At, AtISO string
	RTO, RPO         string
	Error            string
}

func (s *Server) checkedExport(v poller.Verification) *checkedExport {
	c := &checkedExport{
		ID: opID(v.Operation), Name: v.Operation, Link: s.operationLink(v.Operation, v.Target),
		At: present.TimeIn(v.At, s.loc(), present.ListLayout), AtISO: present.ISOTime(v.At),
		Text: present.VerifiedText(v), TextClass: "muted", Badge: present.VerifiedBadge(&v),
	}
	if v.Alarm() {
		c.TextClass = "warning"
	}
	return c
}

func (s *Server) verifiedCell(c targetChecks) verifiedCell {
	if c.Verified == nil {
		return verifiedCell{}
	}
	cell := verifiedCell{Shown: true}
	if g := c.good(); g != nil {
		cell.Good = s.checkedExport(*g)
	}
	if f := c.failed(); f != nil {
		cell.Failed = s.checkedExport(*f)
	}
	return cell
}

func (s *Server) drillCell(t poller.Target, c targetChecks) drillCell {
	if t.Drill == nil {
		return drillCell{}
	}
	cell := drillCell{Configured: true, Shown: c.DrillRead, Badge: c.DrillBadge, Every: period(t.Drill.Every)}
	if d := c.Drill; d != nil {
		at := d.Ended
		if at.IsZero() {
			at = d.Began
		}
		cell.Title, cell.At, cell.AtISO = present.DrillTitle(*d), present.TimeIn(at, s.loc(), present.ListLayout), present.ISOTime(at)
		cell.RTO, cell.RPO = present.DrillRTO(*d), present.DrillRPO(*d)
		cell.Error = present.Detail(d.Error)
	}
	return cell
}

// verificationJSON is a verification in /api/targets.
type verificationJSON struct {
	Operation string `json:"operation"`
	At        string `json:"at"` // when the check ended
	Verified  bool   `json:"verified"`
	Alarm     bool   `json:"alarm"`
	// Text is the check in one line, "verified: 1,229,517 entities in 12
	// kinds, 11.6 GiB in 40 files".
	Text string `json:"text"`
	// Entities, Kinds, Files and Bytes are what the export's files hold.
	Entities int64 `json:"entities"`
	Kinds    int   `json:"kinds"`
	Files    int   `json:"files"`
	Bytes    int64 `json:"bytes"`
}

func verificationOf(v *poller.Verification) *verificationJSON {
	if v == nil {
		return nil
	}
	return &verificationJSON{
		Operation: v.Operation, At: apiTime(v.At), Verified: v.Verified(), Alarm: v.Alarm(), Text: present.VerifiedText(*v),
		Entities: v.Content.Entities, Kinds: v.Content.KindNames(), Files: v.Content.Files, Bytes: v.Content.Bytes,
	}
}

// drillJSON is a drill in /api/targets.
type drillJSON struct {
	ID string `json:"id"`
	// Outcome is passed, failed, or running.
	Outcome string `json:"outcome"`
	// Step is the step it is at; FailedStep the one that failed.
	Step       string  `json:"step"`
	FailedStep string  `json:"failedStep,omitempty"`
	Began      string  `json:"began"`
	Ended      *string `json:"ended"` // null while it runs
	// RTOSeconds is its restore time, RPOSeconds the age of the restored
	// point when it began (0: not known yet).
	RTOSeconds int64 `json:"rtoSeconds"`
	RPOSeconds int64 `json:"rpoSeconds"`
	// Entities are those counted in the scratch database.
	Entities int64  `json:"entities"`
	Error    string `json:"error,omitempty"`
	// Badge is the status page's badge: "drill passed", "drill failed at
	// import", "drill overdue", "drill under way".
	Badge string `json:"badge"`
}

func drillOf(d poller.Drill, badge present.Badge) *drillJSON {
	j := &drillJSON{
		ID: d.ID, Outcome: string(d.Outcome), Step: string(d.Step), FailedStep: string(d.FailedStep), Began: apiTime(d.Began),
		RTOSeconds: int64(d.RTO() / time.Second), RPOSeconds: int64(d.RPO() / time.Second), Error: d.Error, Badge: badge.Text,
	}
	if d.Outcome == poller.DrillRunning {
		j.Outcome = "running"
	}
	if !d.Ended.IsZero() {
		e := apiTime(d.Ended)
		j.Ended = &e
	}
	for _, k := range d.Counted {
		j.Entities += k.Entities
	}
	return j
}

// apiTime is a time as the API writes it.
func apiTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// addChecks adds c to a target's JSON: the fields are left out when their
// store is not configured, or there is nothing to show yet.
func addChecks(j *targetJSON, t poller.Target, c targetChecks) {
	if c.Verified != nil {
		j.Verification = verificationOf(c.Verified.Latest)
		j.LastVerified = verificationOf(c.Verified.Good)
	}
	if t.Drill != nil {
		j.DrillEvery = int64(t.Drill.Every / time.Second)
	}
	if c.Drill != nil {
		j.Drill = drillOf(*c.Drill, c.DrillBadge)
	}
	for _, b := range c.alarms() {
		j.Alarms = append(j.Alarms, b.Text)
	}
}
