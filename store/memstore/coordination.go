package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// RecordSuccess makes rec the latest success of its filter, as
// poller.OrderSuccess places it, and returns the filter's previous success.
// The project's last success is read from its filters, as store.Store does.
func (s *Store) RecordSuccess(ctx context.Context, rec poller.Record, at time.Time) (poller.Success, bool, error) {
	if err := ctx.Err(); err != nil {
		return poller.Success{}, false, err
	}
	fkey := poller.FilterKey(rec.Scope(), rec.Kinds, rec.Namespaces)
	this := storedSuccess(poller.SuccessAt(rec, at))
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.successes[fkey]
	last, before, previous := poller.OrderSuccess(sp.last, sp.prev, this)
	sp.last, sp.prev, sp.project = last, before, rec.Scope()
	if sp.firstSeen.IsZero() {
		sp.firstSeen = storedTime(at)
	}
	s.successes[fkey] = sp
	return previous, previous.Name != "", nil
}

// Health returns the staleness record of project, created at at if missing
// (or when its first success was recorded, if earlier), with the newest of
// its filters' successes.
func (s *Store) Health(ctx context.Context, project string, at time.Time) (poller.ProjectHealth, error) {
	if err := ctx.Err(); err != nil {
		return poller.ProjectHealth{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var last poller.Success
	firstSeen := storedTime(at)
	for _, sp := range s.successes {
		if sp.project != project {
			continue
		}
		last = poller.LatestSuccess(last, sp.last)
		if sp.firstSeen.Before(firstSeen) {
			firstSeen = sp.firstSeen
		}
	}
	h, ok := s.health[project]
	if !ok {
		h = healthEntry{since: firstSeen}
		s.health[project] = h
	}
	return h.health(project, last), nil
}

func (h healthEntry) health(project string, last poller.Success) poller.ProjectHealth {
	return poller.ProjectHealth{Project: project, Since: h.since, LastSuccess: last, AlarmFor: h.alarmFor, AlarmBy: h.alarmBy}
}

// ClaimStaleAlarm records that holder raises the alarm for forTime when
// poller.CanClaimStaleAlarm allows it; false otherwise.
func (s *Store) ClaimStaleAlarm(ctx context.Context, project, holder string, forTime, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health[project]
	if !poller.CanClaimStaleAlarm(h.health(project, poller.Success{}), holder, storedTime(forTime)) {
		return false, nil
	}
	if h.since.IsZero() {
		h.since = storedTime(at)
	}
	h.alarmFor, h.alarmBy = storedTime(forTime), holder
	s.health[project] = h
	return true, nil
}

// ReleaseStaleAlarm forgets holder's claim for forTime, so the next sweep
// raises it again; with no such claim it does nothing.
func (s *Store) ReleaseStaleAlarm(ctx context.Context, project, holder string, forTime time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.health[project]
	if ok && h.alarmFor.Equal(storedTime(forTime)) && h.alarmBy == holder {
		h.alarmFor, h.alarmBy = time.Time{}, ""
		s.health[project] = h
	}
	return nil
}

// BeginStart decides on a start of req with poller.DecideStart, over the
// filter's start record, the export it last started, and the project's count
// of starts in the minute of at, and reserves the start when the decision is
// to go. It never returns poller.ErrBusy: nothing contends for the lock long.
func (s *Store) BeginStart(ctx context.Context, req poller.StartRequest, at time.Time) (poller.StartDecision, error) {
	if err := ctx.Err(); err != nil {
		return poller.StartDecision{}, err
	}
	rkey := rateKey{project: req.Project, minute: at.UTC().Format("2006-01-02T15:04")}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.starts[req.FilterKey]
	st := poller.StartState{Reserved: se.reserved, ReservedBy: se.reservedBy, Running: se.running,
		LastCronAt: se.lastCronAt, LastCronName: se.lastCronName, StartsThisMinute: s.rates[rkey]}
	if se.running != "" {
		e, ok := s.ops[se.running]
		st.RunningLive = ok && poller.Live(e.rec)
	}
	decision, err := poller.DecideStart(st, req, at)
	if err != nil {
		return poller.StartDecision{}, fmt.Errorf("begin start of an export of %s: %w", req.Project, err)
	}
	if decision.Verdict != poller.StartGo || decision.Again {
		return decision, nil
	}
	s.rates[rkey]++
	se.reserved, se.reservedBy = storedTime(at), req.Holder
	s.starts[req.FilterKey] = se
	return decision, nil
}

// EndStart ends req.Holder's reservation (another's is left alone) and
// records what was started (name empty: the start failed).
func (s *Store) EndStart(ctx context.Context, req poller.StartRequest, name string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.starts[req.FilterKey]
	if !poller.OwnsReservation(se.reservedBy, req.Holder) {
		return nil
	}
	se.reserved, se.reservedBy = time.Time{}, ""
	if name != "" {
		se.running = name
		if req.Trigger == poller.TriggerCron {
			se.lastCronAt, se.lastCronName = storedTime(at), name
		}
	}
	s.starts[req.FilterKey] = se
	return nil
}
