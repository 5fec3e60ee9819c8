package server

import (
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// TestDrillOverdue checks the status page's rule for a target that has had
// no drill: overdue once its verified export has waited longer than the
// drill's period, never without a verified export or a period, and never
// for a target that has had a drill (present.DrillBadge judges that one).
func TestDrillOverdue(t *testing.T) {
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	verifiedAgo := func(ago time.Duration) *poller.Verification {
		return &poller.Verification{Operation: "projects/p/operations/x", At: now.Add(-ago)}
	}
	for _, tt := range []struct {
		name  string
		every time.Duration
		drill *poller.Drill
		good  *poller.Verification
		want  bool
	}{
		{"verified 8 days ago, no drill", week, nil, verifiedAgo(8 * 24 * time.Hour), true},
		{"verified just over a week ago", week, nil, verifiedAgo(week + time.Second), true},
		{"verified exactly a week ago", week, nil, verifiedAgo(week), false},
		{"verified an hour ago", week, nil, verifiedAgo(time.Hour), false},
		{"nothing verified to restore", week, nil, nil, false},
		{"no period", 0, nil, verifiedAgo(30 * 24 * time.Hour), false},
		{"a drill passed", week, &poller.Drill{Outcome: poller.DrillPassed, Began: now.Add(-24 * time.Hour)}, verifiedAgo(8 * 24 * time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := drillOverdue(tt.every, tt.drill, tt.good, now); got != tt.want {
				t.Errorf("drillOverdue(%v, %+v, %+v) = %v; want %v", tt.every, tt.drill, tt.good, got, tt.want)
			}
		})
	}
}

// TestDrillBadgeOverdue checks that the rule turns "no drill yet" into
// "drill overdue", and leaves present.DrillBadge's answer otherwise.
func TestDrillBadgeOverdue(t *testing.T) {
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	old := &poller.Verification{At: now.Add(-8 * 24 * time.Hour)}
	for _, tt := range []struct {
		name       string
		drill      *poller.Drill
		good       *poller.Verification
		class, txt string
	}{
		{"none, verified long ago", nil, old, "bad", "drill overdue"},
		{"none, nothing verified", nil, nil, "run", "no drill yet"},
		{"failed", &poller.Drill{Outcome: poller.DrillFailed, FailedStep: poller.DrillImport, Began: now.Add(-time.Hour)}, old, "bad", "drill failed at import"},
		{"passed", &poller.Drill{Outcome: poller.DrillPassed, Began: now.Add(-time.Hour)}, old, "ok", "drill passed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if b := drillBadge(week, tt.drill, tt.good, now); b.Class != tt.class || b.Text != tt.txt {
				t.Errorf("drillBadge = %+v; want %s %q", b, tt.class, tt.txt)
			}
		})
	}
}
