package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// This file is the status page: the exports at a glance, the recent list and the trend.

type statusView struct {
	pageView
	// Targets are the configured targets at a glance, in their order.
	Targets []targetRow
	history
}

// glance answers at once whether the last export worked and how big it was.
type glance struct {
	Badge    present.Badge
	Headline string // "Last backup: succeeded 5 hours ago"
	Details  []string
	ID, Link string
	Running  *exportRow // an export under way, if the newest one is
	Warning  string
}

// exportRow is one export as the pages show it.
type exportRow struct {
	ID, Link, Name, Project, Trigger, State string
	Target                                  string
	Badge                                   present.Badge
	Started, StartedISO                     string
	Ended, EndedISO                         string
	Duration                                string
	Entities, Bytes, BytesExact             string
	OutputURL, OutputURLPrefix              string
	Kinds, Namespaces                       string
	Command, CommandLabel                   string
	Error, LastError                        string
	Polls                                   int
	Shrink                                  string
	EntitiesPct, BytesPct                   string // "" without an estimate
	EntitiesPctValue, BytesPctValue         int
	Created                                 string
	Reported                                string
	Refused                                 bool
}

func (s *Server) row(rec poller.Record, now time.Time) exportRow {
	loc := s.loc()
	project := rec.ProjectID()
	e := exportRow{
		ID: opID(rec.Name), Link: s.exportLink(rec), Target: rec.Target, Name: rec.Name, Project: project, Trigger: string(rec.Trigger), State: string(rec.State),
		Badge: present.BadgeOf(poller.ReportOf(rec)), Entities: present.Count(rec.EntitiesCompleted),
		Bytes: present.Bytes(rec.BytesCompleted), BytesExact: present.Count(rec.BytesCompleted) + " bytes",
		OutputURL: rec.OutputURL, OutputURLPrefix: rec.OutputURLPrefix,
		Kinds: present.Kinds(rec.Kinds), Namespaces: present.Namespaces(rec.Namespaces),
		Polls: rec.Polls, LastError: present.Detail(rec.LastError), Refused: rec.Refused,
		Created: present.TimeIn(rec.Created, loc, present.TimeLayout), Reported: present.TimeIn(rec.ReportedAt, loc, present.TimeLayout),
	}
	e.Trigger = present.OrNone(e.Trigger)
	start := rec.StartTime
	if start.IsZero() {
		start = rec.Created // a refused start has no operation, only its record
	}
	e.Started, e.StartedISO = present.TimeIn(start, loc, present.ListLayout), present.ISOTime(start)
	e.Ended, e.EndedISO = present.TimeIn(rec.EndTime, loc, present.ListLayout), present.ISOTime(rec.EndTime)
	switch {
	case !rec.StartTime.IsZero() && !rec.EndTime.IsZero():
		e.Duration = present.HumanDuration(rec.EndTime.Sub(rec.StartTime))
	case !rec.StartTime.IsZero() && e.Badge.Class == "run":
		e.Duration = present.HumanDuration(now.Sub(rec.StartTime)) + " so far"
	default:
		e.Duration = present.None
	}
	if rec.EntitiesEstimated > 0 && !rec.Done {
		e.Entities += " of " + present.Count(rec.EntitiesEstimated)
	}
	if !rec.Done {
		e.EntitiesPct, e.EntitiesPctValue = percent(rec.EntitiesCompleted, rec.EntitiesEstimated)
		e.BytesPct, e.BytesPctValue = percent(rec.BytesCompleted, rec.BytesEstimated)
	}
	if rec.ErrorMessage != "" || rec.ErrorCode != 0 {
		e.Error = present.ErrorText(rec.Operation)
	}
	if c, ok := present.NextCommand(poller.ReportOf(rec)); ok {
		e.CommandLabel, e.Command = c.Label, c.Text
	}
	return e
}

// percent is completed of estimated as present writes it, for a label, and
// in whole percent for a <progress>; without an estimate there is none.
func percent(completed, estimated int64) (string, int) {
	pct, ok := present.PercentOf(completed, estimated)
	if !ok {
		return "", 0
	}
	return present.Percent(completed, estimated), int(pct)
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := time.Now()
	states, err := s.targetStates(ctx, recs, now)
	if err != nil {
		return err
	}
	v := statusView{pageView: newPageView("Datastore exports")}
	for _, st := range states {
		v.Targets = append(v.Targets, s.targetRow(st, now))
	}
	if v.history, err = s.history(ctx, recs.ListPage, now); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "status", v)
	return nil
}

// history is the exports at a glance, the recent list and the trend.
type history struct {
	Glance *glance
	Rows   []exportRow
	Trend  *trend
	// More says the list shows only the newest records; APILink is the
	// API that pages through all of them.
	More    bool
	APILink string
}

// history reads the records list pages through, newest first: the newest
// recentSize for the list, and further back, up to maxScan, for the trend.
func (s *Server) history(ctx context.Context, list func(ctx context.Context, limit int, cursor string) ([]poller.Record, string, error), now time.Time) (history, error) {
	recent, next, err := list(ctx, recentSize, "")
	if err != nil {
		return history{}, err
	}
	all := recent
	for next != "" && len(all) < maxScan && !trendComplete(all) {
		var more []poller.Record
		if more, next, err = list(ctx, scanPage, next); err != nil {
			return history{}, err
		}
		all = append(all, more...)
	}
	shrinks := s.shrinks(all)
	h := history{More: len(all) > len(recent) || next != "", APILink: "/api/exports"}
	for _, rec := range recent {
		row := s.row(rec, now)
		if sh, ok := shrinks[rec.Name]; ok {
			row.Shrink = present.ShrinkText(sh)
		}
		h.Rows = append(h.Rows, row)
	}
	h.Glance = s.glance(all, shrinks, now)
	h.Trend = s.trend(all, shrinks)
	return h, nil
}

func succeeded(rec poller.Record) bool { return rec.Outcome == poller.OutcomeSuccess }

// filterOf is the database and entity filter rec exported, keyed as the
// poller keys its successes: exports of two databases of one project are
// not compared.
func filterOf(rec poller.Record) string {
	return poller.FilterKey(rec.Scope(), rec.Kinds, rec.Namespaces)
}

// trendComplete tells whether recs, newest first, hold enough successes of
// the newest success's filter for the chart, and one more to compare the
// oldest with.
func trendComplete(recs []poller.Record) bool {
	key, n := "", 0
	for _, rec := range recs {
		if !succeeded(rec) {
			continue
		}
		if key == "" {
			key = filterOf(rec)
		}
		if filterOf(rec) == key {
			n++
		}
	}
	return n > trendSize
}

// shrinks finds, in recs newest first, every success that holds more than
// ShrinkWarn fewer entities than the previous success of its database and
// filter, as the poller's warning decides.
func (s *Server) shrinks(recs []poller.Record) map[string]poller.Shrink {
	out := map[string]poller.Shrink{}
	if s.cfg.ShrinkWarn <= 0 {
		return out
	}
	// Walking oldest first, the last success seen of each filter is the
	// previous one.
	prev := map[string]poller.Success{}
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		if !succeeded(rec) {
			continue
		}
		key := filterOf(rec)
		if sh, ok := poller.CheckShrink(prev[key], rec.Name, rec.EntitiesCompleted, s.cfg.ShrinkWarn); ok {
			out[rec.Name] = sh
		}
		prev[key] = poller.Success{Name: rec.Name, Entities: rec.EntitiesCompleted, At: rec.EndTime}
	}
	return out
}

// glance sums up the newest finished export, and the one under way if any.
func (s *Server) glance(recs []poller.Record, shrinks map[string]poller.Shrink, now time.Time) *glance {
	var g glance
	var last *poller.Record
	for i := range recs {
		rec := &recs[i]
		if present.BadgeOf(poller.ReportOf(*rec)).Class == "run" {
			if g.Running == nil && last == nil {
				row := s.row(*rec, now)
				g.Running = &row
			}
			continue
		}
		last = rec
		break
	}
	if last == nil {
		if g.Running == nil {
			return nil
		}
		g.Headline = "No export has finished yet"
		g.Badge = present.Badge{Class: "run", Text: "running"}
		return &g
	}
	b := present.BadgeOf(poller.ReportOf(*last))
	// When it ended: a refusal when it was recorded, an export without an
	// end (a timeout) when the poller decided.
	at := last.EndTime
	switch {
	case last.Refused:
		at = last.Created
	case at.IsZero():
		at = last.Updated
	}
	g.Badge, g.ID, g.Link = b, opID(last.Name), s.exportLink(*last)
	g.Headline = fmt.Sprintf("Last backup: %s %s", b.Text, present.Ago(now, at))
	g.Details = append(g.Details, "finished "+present.TimeIn(at, s.loc(), present.TimeLayout))
	if succeeded(*last) {
		g.Details = append(g.Details, present.Count(last.EntitiesCompleted)+" entities", present.Bytes(last.BytesCompleted))
		if !last.StartTime.IsZero() && !last.EndTime.IsZero() {
			g.Details = append(g.Details, "took "+present.HumanDuration(last.EndTime.Sub(last.StartTime)))
		}
		if p, ok := previousSuccess(recs, *last); ok && p.EntitiesCompleted > 0 {
			change := 100 * float64(last.EntitiesCompleted-p.EntitiesCompleted) / float64(p.EntitiesCompleted)
			g.Details = append(g.Details, fmt.Sprintf("%+.1f%% entities vs the previous success %s", change, present.Ago(now, p.EndTime)))
		}
		if sh, ok := shrinks[last.Name]; ok {
			g.Warning = "Shrink warning: " + present.ShrinkText(sh)
		}
		return &g
	}
	if last.Refused {
		g.Details = append(g.Details, "the Admin API refused to start it")
	}
	if last.ErrorMessage != "" || last.ErrorCode != 0 {
		g.Warning = "Error: " + present.ErrorText(last.Operation)
	}
	for _, rec := range recs {
		if succeeded(rec) {
			g.Details = append(g.Details, fmt.Sprintf("last success %s (%s entities, %s)", present.Ago(now, rec.EndTime), present.Count(rec.EntitiesCompleted), present.Bytes(rec.BytesCompleted)))
			return &g
		}
	}
	g.Details = append(g.Details, "no success in the recent history")
	return &g
}

// previousSuccess is the success before rec of the same database and filter, in recs newest first.
func previousSuccess(recs []poller.Record, rec poller.Record) (poller.Record, bool) {
	seen := false
	for _, r := range recs {
		if r.Name == rec.Name {
			seen = true
			continue
		}
		if seen && succeeded(r) && filterOf(r) == filterOf(rec) {
			return r, true
		}
	}
	return poller.Record{}, false
}

// trend charts the last trendSize successes of the newest success's
// database and filter: a chart mixing filters would show every change of filter as a
// jump in size.
type trend struct {
	Caption string
	Charts  []chart
	Shrinks int
	Table   []trendRow
}

type trendRow struct {
	ID, Link, When, Entities, Bytes, Duration, Shrink string
}

func (s *Server) trend(recs []poller.Record, shrinks map[string]poller.Shrink) *trend {
	var pts []poller.Record // newest first
	key := ""
	for _, rec := range recs {
		if !succeeded(rec) {
			continue
		}
		if key == "" {
			key = filterOf(rec)
		}
		if filterOf(rec) == key && len(pts) < trendSize {
			pts = append(pts, rec)
		}
	}
	if len(pts) == 0 {
		return nil
	}
	loc := s.loc()
	n := len(pts)
	var ents, byts, durs []point
	t := &trend{Caption: fmt.Sprintf("Last %d successful %s of %s (kinds: %s; namespaces: %s)",
		n, present.Plural(n, "export", "exports"), pts[0].Scope(), present.Kinds(pts[0].Kinds), present.Namespaces(pts[0].Namespaces))}
	for i := n - 1; i >= 0; i-- {
		rec := pts[i]
		x := float64(n - 1 - i)
		when := present.TimeIn(rec.EndTime, loc, present.ListLayout)
		_, shrunk := shrinks[rec.Name]
		var d time.Duration
		if !rec.StartTime.IsZero() && !rec.EndTime.IsZero() {
			d = rec.EndTime.Sub(rec.StartTime)
		}
		label := when
		ents = append(ents, point{X: x, Y: float64(rec.EntitiesCompleted), Label: label + ": " + present.Count(rec.EntitiesCompleted) + " entities", Mark: shrunk})
		byts = append(byts, point{X: x, Y: float64(rec.BytesCompleted), Label: label + ": " + present.Bytes(rec.BytesCompleted)})
		durs = append(durs, point{X: x, Y: d.Seconds(), Label: label + ": " + present.HumanDuration(d)})
		row := trendRow{ID: opID(rec.Name), Link: s.exportLink(rec), When: when, Entities: present.Count(rec.EntitiesCompleted), Bytes: present.Bytes(rec.BytesCompleted), Duration: present.HumanDuration(d)}
		if sh, ok := shrinks[rec.Name]; ok {
			row.Shrink = present.ShrinkText(sh)
			ents[len(ents)-1].Label += " — shrink warning: " + row.Shrink
			t.Shrinks++
		}
		t.Table = append(t.Table, row)
	}
	first, last := present.TimeIn(pts[n-1].EndTime, loc, present.ShortLayout), present.TimeIn(pts[0].EndTime, loc, present.ShortLayout)
	xl := [2]string{first, last}
	marks := ""
	if t.Shrinks > 0 {
		marks = fmt.Sprintf("; %d shrink %s marked", t.Shrinks, present.Plural(t.Shrinks, "warning", "warnings"))
	}
	t.Charts = []chart{
		newChart("trend-entities", "Entities exported", fmt.Sprintf("Entities of the last %d successes, %s to %s%s", n, first, last, marks), "successes",
			xl, func(v float64) string { return present.ShortCount(v) }, series{Name: "entities", Class: "s1", Points: ents}),
		newChart("trend-bytes", "Bytes exported", fmt.Sprintf("Bytes of the last %d successes, %s to %s", n, first, last), "successes",
			xl, func(v float64) string { return present.Bytes(int64(v)) }, series{Name: "bytes", Class: "s2", Points: byts}),
		newChart("trend-duration", "Duration", fmt.Sprintf("Duration of the last %d successes, %s to %s", n, first, last), "successes",
			xl, func(v float64) string { return present.HumanDuration(time.Duration(v) * time.Second) }, series{Name: "duration", Class: "s3", Points: durs}),
	}
	return t
}
