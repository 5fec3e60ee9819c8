package memstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// RecordSuccess makes rec the latest success of its filter, as
// poller.OrderSuccess places it, and of its project's health, and returns the
// filter's previous success.
func (s *Store) RecordSuccess(ctx context.Context, rec poller.Record, at time.Time) (poller.Success, bool, error) {
	if err := ctx.Err(); err != nil {
		return poller.Success{}, false, err
	}
	fkey := poller.FilterKey(rec.Project, rec.Kinds, rec.Namespaces)
	this := storedSuccess(poller.SuccessAt(rec, at))
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.successes[fkey]
	last, before, previous := poller.OrderSuccess(sp.last, sp.prev, this)
	s.successes[fkey] = successPair{last: last, prev: before}
	h := s.health[rec.Project]
	if h.since.IsZero() {
		h.since = storedTime(at)
	}
	if !this.At.Before(h.last.At) {
		h.last = this
	}
	s.health[rec.Project] = h
	return previous, previous.Name != "", nil
}

// Health returns the staleness record of project, created at at if missing.
func (s *Store) Health(ctx context.Context, project string, at time.Time) (poller.ProjectHealth, error) {
	if err := ctx.Err(); err != nil {
		return poller.ProjectHealth{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.health[project]
	if !ok {
		h = healthEntry{since: storedTime(at)}
		s.health[project] = h
	}
	return poller.ProjectHealth{Project: project, Since: h.since, LastSuccess: h.last, AlarmFor: h.alarmFor}, nil
}

// ClaimStaleAlarm records that the alarm for forTime is being raised; false
// when it was already.
func (s *Store) ClaimStaleAlarm(ctx context.Context, project string, forTime, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health[project]
	if h.alarmFor.Equal(storedTime(forTime)) {
		return false, nil
	}
	if h.since.IsZero() {
		h.since = storedTime(at)
	}
	h.alarmFor = storedTime(forTime)
	s.health[project] = h
	return true, nil
}

// errNoHealth is ReleaseStaleAlarm's error for a project that has no health
// record, as store.Store fails on the missing entity.
var errNoHealth = errors.New("no health record")

// ReleaseStaleAlarm forgets the claim for forTime, so the next sweep raises it again.
func (s *Store) ReleaseStaleAlarm(ctx context.Context, project string, forTime time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.health[project]
	if !ok {
		return fmt.Errorf("release staleness alarm of %s: %w", project, errNoHealth)
	}
	if h.alarmFor.Equal(storedTime(forTime)) {
		h.alarmFor = time.Time{}
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
	st := poller.StartState{Reserved: se.reserved, Running: se.running,
		LastCronAt: se.lastCronAt, LastCronName: se.lastCronName, StartsThisMinute: s.rates[rkey]}
	if se.running != "" {
		e, ok := s.ops[se.running]
		st.RunningLive = ok && poller.Live(e.rec)
	}
	decision, err := poller.DecideStart(st, req, at)
	if err != nil {
		return poller.StartDecision{}, fmt.Errorf("begin start of an export of %s: %w", req.Project, err)
	}
	if decision.Verdict != poller.StartGo {
		return decision, nil
	}
	s.rates[rkey]++
	se.reserved = storedTime(at)
	s.starts[req.FilterKey] = se
	return decision, nil
}

// EndStart ends the reservation and records what was started (name empty:
// the start failed).
func (s *Store) EndStart(ctx context.Context, req poller.StartRequest, name string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.starts[req.FilterKey]
	se.reserved = time.Time{}
	if name != "" {
		se.running = name
		if req.Trigger == poller.TriggerCron {
			se.lastCronAt, se.lastCronName = storedTime(at), name
		}
	}
	s.starts[req.FilterKey] = se
	return nil
}
