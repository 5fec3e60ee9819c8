package poller_test

import (
	"errors"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// at0 is the time the rules are applied at.
var at0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

func TestDecideStart(t *testing.T) {
	cron := poller.StartRequest{Project: "p", Trigger: poller.TriggerCron, CronWindow: time.Hour, PerMinute: 3}
	manual := cron
	manual.Trigger = poller.TriggerManual
	forced := manual
	forced.Force = true
	tests := []struct {
		name    string
		st      poller.StartState
		req     poller.StartRequest
		want    poller.StartDecision
		wantErr error
	}{
		{"nothing before", poller.StartState{}, cron, poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"a start in progress", poller.StartState{Reserved: at0.Add(-time.Minute)}, cron, poller.StartDecision{}, poller.ErrStartInProgress},
		{"a start that died long ago", poller.StartState{Reserved: at0.Add(-poller.StartReservation)}, cron, poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"cron repeated in its window", poller.StartState{LastCronAt: at0.Add(-59 * time.Minute), LastCronName: "op1"}, cron,
			poller.StartDecision{Verdict: poller.StartDuplicate, Name: "op1"}, nil},
		{"cron after its window", poller.StartState{LastCronAt: at0.Add(-time.Hour), LastCronName: "op1"}, cron,
			poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"cron is not held back by a running export", poller.StartState{Running: "op1", RunningLive: true}, cron,
			poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"manual waits for a running export", poller.StartState{Running: "op1", RunningLive: true}, manual,
			poller.StartDecision{Verdict: poller.StartRunning, Name: "op1"}, nil},
		{"manual after the export ended", poller.StartState{Running: "op1"}, manual, poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"forced while running", poller.StartState{Running: "op1", RunningLive: true}, forced, poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"manual ignores the cron window", poller.StartState{LastCronAt: at0, LastCronName: "op1"}, manual, poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"rate cap reached", poller.StartState{StartsThisMinute: 3}, forced, poller.StartDecision{}, poller.ErrRateLimited},
		{"rate under the cap", poller.StartState{StartsThisMinute: 2}, forced, poller.StartDecision{Verdict: poller.StartGo}, nil},
		{"own reservation (a late commit retried)", poller.StartState{Reserved: at0.Add(-time.Second), ReservedBy: "me", StartsThisMinute: 3},
			mine(forced, "me"), poller.StartDecision{Verdict: poller.StartGo, Again: true}, nil},
		{"another's reservation", poller.StartState{Reserved: at0.Add(-time.Second), ReservedBy: "other"},
			mine(forced, "me"), poller.StartDecision{}, poller.ErrStartInProgress},
		{"no holder is nobody's own", poller.StartState{Reserved: at0.Add(-time.Second)}, forced, poller.StartDecision{}, poller.ErrStartInProgress},
	}
	for _, tt := range tests {
		got, err := poller.DecideStart(tt.st, tt.req, at0)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("%s: DecideStart = %+v, %v; want %+v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func mine(req poller.StartRequest, holder string) poller.StartRequest {
	req.Holder = holder
	return req
}

func TestClaimAndLeaseRules(t *testing.T) {
	ttl := time.Minute
	claimed := poller.Record{ReportClaimed: at0.Add(-30 * time.Second), ReportClaimer: "other"}
	own := poller.Record{ReportClaimed: at0.Add(-30 * time.Second), ReportClaimer: "me"}
	old := poller.Record{ReportClaimed: at0.Add(-ttl), ReportClaimer: "other"}
	sent := poller.Record{ReportedAt: at0.Add(-time.Hour), ReportClaimer: "me"}
	for _, tt := range []struct {
		name   string
		rec    poller.Record
		holder string
		want   bool
	}{
		{"unclaimed", poller.Record{}, "me", true},
		{"claimed now by another", claimed, "me", false},
		{"claimed now by me (a late commit retried)", own, "me", true},
		{"no holder is nobody's own", poller.Record{ReportClaimed: at0}, "", false},
		{"claim expired", old, "me", true},
		{"sent, even by me", sent, "me", false},
	} {
		if got := poller.CanClaimReport(tt.rec, tt.holder, at0, ttl); got != tt.want {
			t.Errorf("CanClaimReport(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name   string
		h      poller.ProjectHealth
		holder string
		want   bool
	}{
		{"not raised", poller.ProjectHealth{}, "me", true},
		{"raised for another stretch", poller.ProjectHealth{AlarmFor: at0.Add(-time.Hour), AlarmBy: "other"}, "me", true},
		{"raised by another", poller.ProjectHealth{AlarmFor: at0, AlarmBy: "other"}, "me", false},
		{"raised by me (a late commit retried)", poller.ProjectHealth{AlarmFor: at0, AlarmBy: "me"}, "me", true},
	} {
		if got := poller.CanClaimStaleAlarm(tt.h, tt.holder, at0); got != tt.want {
			t.Errorf("CanClaimStaleAlarm(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
	held := poller.Record{LeaseHolder: "a", LeaseExpires: at0.Add(time.Second)}
	for _, tt := range []struct {
		name   string
		rec    poller.Record
		holder string
		want   bool
	}{
		{"free", poller.Record{}, "b", true},
		{"held by another", held, "b", false},
		{"held by the same", held, "a", true},
		{"expired", poller.Record{LeaseHolder: "a", LeaseExpires: at0}, "b", true},
	} {
		if got := poller.LeaseFree(tt.rec, tt.holder, at0); got != tt.want {
			t.Errorf("LeaseFree(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestOrderSuccess(t *testing.T) {
	a := poller.Success{Name: "a", Entities: 10, At: at0}
	b := poller.Success{Name: "b", Entities: 9, At: at0.Add(time.Hour)}
	c := poller.Success{Name: "c", Entities: 8, At: at0.Add(2 * time.Hour)}
	for _, tt := range []struct {
		name                     string
		last, prev, this         poller.Success
		wantLast, wantPrev, want poller.Success
	}{
		{"first", poller.Success{}, poller.Success{}, a, a, poller.Success{}, poller.Success{}},
		{"newer", a, poller.Success{}, b, b, a, a},
		{"newer again", b, a, c, c, b, b},
		{"the same again compares with the same", b, a, b, b, a, a},
		{"an older one late changes nothing", c, b, a, c, b, poller.Success{}},
	} {
		last, prev, previous := poller.OrderSuccess(tt.last, tt.prev, tt.this)
		if last != tt.wantLast || prev != tt.wantPrev || previous != tt.want {
			t.Errorf("%s: OrderSuccess = %v, %v, %v; want %v, %v, %v", tt.name, last, prev, previous, tt.wantLast, tt.wantPrev, tt.want)
		}
	}
	rec := poller.Record{Operation: poller.Operation{Name: "x", EntitiesCompleted: 5}}
	if got := poller.SuccessAt(rec, at0); !got.At.Equal(at0) {
		t.Errorf("SuccessAt without an end time = %v; want the time it was recorded", got.At)
	}
	rec.EndTime = at0.Add(-time.Hour)
	if got := poller.SuccessAt(rec, at0); !got.At.Equal(rec.EndTime) || got.Entities != 5 || got.Name != "x" {
		t.Errorf("SuccessAt = %+v; want placed at the end time", got)
	}
}

func TestCheckShrink(t *testing.T) {
	prev := poller.Success{Name: "before", Entities: 1000}
	for _, tt := range []struct {
		name     string
		prev     poller.Success
		entities int64
		warn     float64
		want     bool
	}{
		{"15% fewer", prev, 850, 0.10, true},
		{"exactly 10% fewer", prev, 900, 0.10, false},
		{"more", prev, 1200, 0.10, false},
		{"no warning configured", prev, 10, 0, false},
		{"no previous success", poller.Success{}, 10, 0.10, false},
		{"compared with itself", poller.Success{Name: "this", Entities: 1000}, 10, 0.10, false},
	} {
		sh, got := poller.CheckShrink(tt.prev, "this", tt.entities, tt.warn)
		if got != tt.want {
			t.Errorf("CheckShrink(%s) = %v; want %v", tt.name, got, tt.want)
		}
		if got && (sh.PreviousName != "before" || sh.PreviousEntities != 1000 || sh.Entities != tt.entities) {
			t.Errorf("CheckShrink(%s) = %+v; want both counts and the previous name", tt.name, sh)
		}
	}
}

func TestStaleAlarmDue(t *testing.T) {
	after := 26 * time.Hour
	watched := poller.ProjectHealth{Since: at0}
	succeeded := poller.ProjectHealth{Since: at0, LastSuccess: poller.Success{Name: "s", At: at0.Add(10 * time.Hour)}}
	for _, tt := range []struct {
		name string
		h    poller.ProjectHealth
		now  time.Time
		want bool
	}{
		{"watched for 25h", watched, at0.Add(25 * time.Hour), false},
		{"watched for 26h", watched, at0.Add(26 * time.Hour), true},
		{"already raised for this stretch", poller.ProjectHealth{Since: at0, AlarmFor: at0}, at0.Add(40 * time.Hour), false},
		{"a success 20h ago", succeeded, at0.Add(30 * time.Hour), false},
		{"a success 27h ago", succeeded, at0.Add(37 * time.Hour), true},
		{"raised before that success", poller.ProjectHealth{Since: at0, AlarmFor: at0, LastSuccess: succeeded.LastSuccess}, at0.Add(37 * time.Hour), true},
	} {
		if got := poller.StaleAlarmDue(tt.h, tt.now, after); got != tt.want {
			t.Errorf("StaleAlarmDue(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
	if poller.StaleAlarmDue(watched, at0.Add(1000*time.Hour), 0) {
		t.Errorf("StaleAlarmDue with no StaleAfter = true; want never")
	}
}

func TestSweepDecision(t *testing.T) {
	leaseTTL, claimTTL := 3*time.Minute, time.Minute
	running := poller.Operation{Name: "projects/p/operations/1", State: poller.StateProcessing}
	done := poller.Operation{Name: "projects/p/operations/1", State: poller.StateSuccessful, Done: true}
	for _, tt := range []struct {
		name string
		rec  poller.Record
		want poller.SweepAction
	}{
		{"leased", poller.Record{Operation: running, Polls: 3, LeaseHolder: "a", LeaseExpires: at0.Add(time.Second)}, poller.SweepSkip},
		{"lease expired", poller.Record{Operation: running, Polls: 3, LeaseHolder: "a", LeaseExpires: at0}, poller.SweepResume},
		{"fresh start not yet polled", poller.Record{Operation: running, Updated: at0.Add(-time.Minute)}, poller.SweepSkip},
		{"start never polled", poller.Record{Operation: running, Updated: at0.Add(-leaseTTL)}, poller.SweepResume},
		{"polled and released", poller.Record{Operation: running, Polls: 2, Updated: at0}, poller.SweepResume},
		{"ended, unreported", poller.Record{Operation: done, Outcome: poller.OutcomeSuccess}, poller.SweepReport},
		{"done when recorded", poller.Record{Operation: done}, poller.SweepReport},
		{"timed out", poller.Record{Operation: running, Outcome: poller.OutcomeTimeout}, poller.SweepReport},
		{"being sent", poller.Record{Operation: done, Outcome: poller.OutcomeSuccess, ReportClaimed: at0.Add(-time.Second)}, poller.SweepSkip},
		{"send died", poller.Record{Operation: done, Outcome: poller.OutcomeSuccess, ReportClaimed: at0.Add(-claimTTL)}, poller.SweepReport},
	} {
		if got := poller.SweepDecision(tt.rec, at0, leaseTTL, claimTTL); got != tt.want {
			t.Errorf("SweepDecision(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestReportOf(t *testing.T) {
	refused := poller.Record{Operation: poller.Operation{Name: "projects/p/operations/refused-1", Refused: true, Done: true,
		ErrorCode: 7, ErrorMessage: "The caller does not have permission"}, Outcome: poller.OutcomeFailure, Polls: 0}
	r := poller.ReportOf(refused)
	if r.StartError != refused.ErrorMessage || r.Outcome != poller.OutcomeFailure {
		t.Errorf("ReportOf(refused) = %+v; want the refusal as StartError", r)
	}
	polled := poller.Record{Operation: poller.Operation{Name: "projects/p/operations/2"}, Outcome: poller.OutcomeTimeout,
		Polls: 60, LastError: "503", Message: poller.MessageRef{Channel: "C1", TS: "1.2"}}
	r = poller.ReportOf(polled)
	if r.StartError != "" || r.Polls != 60 || r.LastError != "503" || r.Message != polled.Message {
		t.Errorf("ReportOf(polled) = %+v; want polls, last error and message, no StartError", r)
	}
}

func TestLatestSuccess(t *testing.T) {
	old := poller.Success{Name: "a", At: at0}
	newer := poller.Success{Name: "b", At: at0.Add(time.Minute)}
	tie := poller.Success{Name: "c", At: at0}
	for _, tt := range []struct {
		name       string
		a, b, want poller.Success
	}{
		{"none", poller.Success{}, poller.Success{}, poller.Success{}},
		{"one", poller.Success{}, old, old},
		{"newer second", old, newer, newer},
		{"newer first", newer, old, newer},
		{"tie by name", old, tie, tie},
		{"tie by name, swapped", tie, old, tie},
	} {
		if got := poller.LatestSuccess(tt.a, tt.b); got != tt.want {
			t.Errorf("LatestSuccess(%s) = %+v; want %+v", tt.name, got, tt.want)
		}
	}
}
