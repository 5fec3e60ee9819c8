package poller

import "time"

// This file holds the domain's rules as pure functions. The store calls them
// inside its transactions and the presentation calls them to show what was
// decided, so each rule has one home and is tested without a database.

// CheckShrink compares a success holding entities with the previous success
// of the same database and filter: it returns the shrink when the new one
// holds more than warn (0.1 for 10%) fewer entities, and false otherwise or
// when warn is 0 (no warning configured).
func CheckShrink(previous Success, name string, entities int64, warn float64) (Shrink, bool) {
	if warn <= 0 || previous.Name == "" || previous.Name == name {
		return Shrink{}, false
	}
	sh := Shrink{PreviousName: previous.Name, PreviousEntities: previous.Entities, Entities: entities}
	if float64(entities) < float64(previous.Entities)*(1-warn) {
		return sh, true
	}
	return Shrink{}, false
}

// ProjectID is the operation's project: the Project field, or the project
// its name carries when the field was not filled in.
func (op Operation) ProjectID() string {
	if op.Project != "" {
		return op.Project
	}
	p, _ := ParseName(op.Name)
	return p
}

// ReportOf is what rec tells as a report: its outcome, its latest snapshot,
// how it was polled, and for a refused start the API's refusal. A shrink or
// a staleness alarm is not part of the record; the poller adds them.
func ReportOf(rec Record) Report {
	r := Report{Outcome: rec.Outcome, Operation: rec.Operation, Polls: rec.Polls, LastError: rec.LastError, Message: rec.Message}
	if rec.Refused {
		r.StartError = rec.ErrorMessage
	}
	return r
}

// StartState is what the store knows, inside its transaction, about the
// starts of one project and filter.
type StartState struct {
	// Reserved is when a start began that has not ended yet, ReservedBy
	// the StartRequest.Holder that began it.
	Reserved   time.Time
	ReservedBy string
	// Running is the export this filter started last; RunningLive tells
	// whether it is still running (recorded, not done, no outcome).
	Running     string
	RunningLive bool
	// LastCronAt and LastCronName are the previous cron start.
	LastCronAt   time.Time
	LastCronName string
	// StartsThisMinute counts the project's starts in the minute of at.
	StartsThisMinute int
}

// StartVerdict is what DecideStart decided.
type StartVerdict int

// The verdicts.
const (
	// StartGo: start the export; the store reserves the start.
	StartGo StartVerdict = iota
	// StartDuplicate: a cron request repeated within its window; Name is
	// the export the first request started.
	StartDuplicate
	// StartRunning: an export of the same filter runs (Name); a manual
	// start needs Force to start another.
	StartRunning
)

// StartDecision is DecideStart's answer.
type StartDecision struct {
	Verdict StartVerdict
	Name    string
	// Again: the reservation is the caller's own already (its earlier
	// BeginStart committed but answered late); nothing is to be written.
	Again bool
}

// OwnsReservation tells whether the start named holder may end the
// reservation held by reservedBy, and record what it started. A start ends
// only its own: one whose reservation is gone (its own EndStart committed
// but answered late, or another start took the filter after the
// reservation expired) writes nothing, so that a retry cannot bring back an
// older export over a newer one. A request without a holder (older
// callers) ends whatever is there.
func OwnsReservation(reservedBy, holder string) bool { return holder == "" || reservedBy == holder }

// StartReservation is how long a start in progress keeps other starts of
// its filter out; a request that died while starting frees the filter
// after it.
const StartReservation = 2 * time.Minute

// DecideStart applies the start rules to req at at: one start of a filter
// at a time (ErrStartInProgress), a cron request repeated within its window
// is a retry of the first (App Engine retries cron), a manual start waits
// for a running export of its filter unless forced, and a project's starts
// are capped per minute (ErrRateLimited). A cron start is not refused for
// a running export: only the window keeps cron from starting twice, and a
// skipped daily export must not go unreported.
func DecideStart(st StartState, req StartRequest, at time.Time) (StartDecision, error) {
	if !st.Reserved.IsZero() && at.Before(st.Reserved.Add(StartReservation)) {
		if req.Holder != "" && st.ReservedBy == req.Holder {
			return StartDecision{Verdict: StartGo, Again: true}, nil
		}
		return StartDecision{}, ErrStartInProgress
	}
	if req.Trigger == TriggerCron && st.LastCronName != "" && req.CronWindow > 0 && at.Before(st.LastCronAt.Add(req.CronWindow)) {
		return StartDecision{Verdict: StartDuplicate, Name: st.LastCronName}, nil
	}
	if !req.Force && req.Trigger != TriggerCron && st.Running != "" && st.RunningLive {
		return StartDecision{Verdict: StartRunning, Name: st.Running}, nil
	}
	if req.PerMinute > 0 && st.StartsThisMinute >= req.PerMinute {
		return StartDecision{}, ErrRateLimited
	}
	return StartDecision{Verdict: StartGo}, nil
}

// Live tells whether rec is an export still running as far as dsexport
// knows: recorded, not done, no outcome decided.
func Live(rec Record) bool { return rec.Outcome == OutcomeNone && !rec.Done }

// CanClaimReport tells whether holder may claim rec's report at at: it was
// not delivered, and no claim of another holder younger than ttl holds it.
// holder's own claim is its own to claim again (a retry of a claim that
// committed but answered late); an older claim belongs to a poller that
// died while sending and is taken over.
func CanClaimReport(rec Record, holder string, at time.Time, ttl time.Duration) bool {
	if rec.Reported() {
		return false
	}
	return rec.ReportClaimed.IsZero() || (holder != "" && rec.ReportClaimer == holder) || !at.Before(rec.ReportClaimed.Add(ttl))
}

// CanClaimStaleAlarm tells whether holder may raise the alarm for forTime:
// it was not raised for forTime yet, or holder raised it (a retry).
func CanClaimStaleAlarm(h ProjectHealth, holder string, forTime time.Time) bool {
	return !h.AlarmFor.Equal(forTime) || (holder != "" && h.AlarmBy == holder)
}

// LeaseFree tells whether holder may take rec's lease at at: nobody holds
// it, holder does, or the holder's lease expired.
func LeaseFree(rec Record, holder string, at time.Time) bool {
	return rec.LeaseHolder == "" || rec.LeaseHolder == holder || !at.Before(rec.LeaseExpires)
}

// SuccessAt is the success rec stands for: placed by when the export ended,
// not when it was recorded (at), so that a report retried late does not
// pass a newer success.
func SuccessAt(rec Record, at time.Time) Success {
	end := rec.EndTime
	if end.IsZero() {
		end = at
	}
	return Success{Name: rec.Name, Entities: rec.EntitiesCompleted, At: end}
}

// OrderSuccess places this among a filter's last two successes: it returns
// the new last and previous successes and the success this compares with
// (zero when none). The same success placed again compares with the same
// one; an older success arriving late changes nothing and compares with
// nothing.
func OrderSuccess(last, prev, this Success) (newLast, newPrev, previous Success) {
	switch {
	case last.Name == this.Name:
		return last, prev, prev
	case last.Name == "" || !this.At.Before(last.At):
		return this, last, last
	}
	return last, prev, Success{}
}

// LatestSuccess is the newer of two successes (by when they ended; the
// later name on a tie, so that the order of the arguments does not matter).
func LatestSuccess(a, b Success) Success {
	switch {
	case a.Name == "":
		return b
	case b.Name == "", a.At.After(b.At), a.At.Equal(b.At) && a.Name > b.Name:
		return a
	}
	return b
}

// StaleSince is when a project's stretch without success began: its last
// success, or when dsexport started watching it.
func StaleSince(h ProjectHealth) time.Time {
	if h.LastSuccess.At.IsZero() {
		return h.Since
	}
	return h.LastSuccess.At
}

// StaleAlarmDue tells whether the staleness alarm is due at now: no success
// for after (0: never), and no alarm raised yet for this stretch.
func StaleAlarmDue(h ProjectHealth, now time.Time, after time.Duration) bool {
	since := StaleSince(h)
	return after > 0 && now.Sub(since) >= after && !h.AlarmFor.Equal(since)
}

// SweepAction is what the sweep does with a pending record.
type SweepAction int

// The sweep's actions.
const (
	// SweepSkip: a live poller or a sender is on it.
	SweepSkip SweepAction = iota
	// SweepResume: running with no live poller; hand it to one.
	SweepResume
	// SweepReport: ended but not reported; report it.
	SweepReport
)

// SweepDecision decides on a pending record at now. A poller that holds a
// live lease is working on it. A fresh start whose first task may not have
// run yet gets leaseTTL; one that was polled and released (a stop, a
// continuation not yet running) is handed over at once, and if its
// continuation runs too, the lease lets one of them through. An ended
// record whose report is claimed by a live claim is being sent.
func SweepDecision(rec Record, now time.Time, leaseTTL, claimTTL time.Duration) SweepAction {
	if rec.Outcome == OutcomeNone && Classify(rec.Operation) == OutcomeNone {
		switch {
		case rec.LeaseHolder != "" && now.Before(rec.LeaseExpires):
			return SweepSkip
		case rec.LeaseHolder == "" && rec.Polls == 0 && now.Sub(rec.Updated) < leaseTTL:
			return SweepSkip
		}
		return SweepResume
	}
	if !rec.ReportClaimed.IsZero() && now.Before(rec.ReportClaimed.Add(claimTTL)) {
		return SweepSkip
	}
	return SweepReport
}
