package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// This file is the page of one export: its facts, snapshots and progress chart.

type exportView struct {
	pageView
	Export    exportRow
	Chart     *chart
	Snapshots []snapshotRow
}

type snapshotRow struct {
	Poll                  int
	Time, TimeISO, State  string
	Done                  string
	Entities, Bytes       string
	EntitiesPct, BytesPct string
}

func (s *Server) exportPage(w http.ResponseWriter, r *http.Request) error {
	rec, snaps, err := s.lookup(r.Context(), r)
	if err != nil {
		return err
	}
	loc := s.loc()
	v := exportView{pageView: newPageView("Export " + opID(rec.Name)), Export: s.row(rec, time.Now())}
	for _, sn := range snaps {
		row := snapshotRow{
			Poll: sn.Poll, Time: present.TimeIn(sn.Time, loc, present.TimeLayout), TimeISO: present.ISOTime(sn.Time), State: string(sn.State),
			Done:     "no",
			Entities: present.Of(sn.EntitiesCompleted, sn.EntitiesEstimated, present.Count), Bytes: present.Of(sn.BytesCompleted, sn.BytesEstimated, present.Bytes),
		}
		if sn.Done {
			row.Done = "yes"
		}
		row.EntitiesPct, _ = percent(sn.EntitiesCompleted, sn.EntitiesEstimated)
		row.BytesPct, _ = percent(sn.BytesCompleted, sn.BytesEstimated)
		v.Snapshots = append(v.Snapshots, row)
	}
	v.Chart = progressChart(snaps, loc)
	s.render(w, r, http.StatusOK, "export", v)
	return nil
}

// progressChart plots entities and bytes in percent of their estimates
// against time. A snapshot without an estimate has no percentage and is
// left out; completed beyond the estimate goes above 100%.
func progressChart(snaps []poller.Snapshot, loc *time.Location) *chart {
	if len(snaps) == 0 {
		return nil
	}
	t0 := snaps[0].Time
	var ents, byts []point
	for _, sn := range snaps {
		x := sn.Time.Sub(t0).Seconds()
		when := present.TimeIn(sn.Time, loc, "15:04:05")
		if sn.EntitiesEstimated > 0 {
			p := 100 * float64(sn.EntitiesCompleted) / float64(sn.EntitiesEstimated)
			ents = append(ents, point{X: x, Y: p, Label: fmt.Sprintf("poll %d at %s: entities %s", sn.Poll, when, present.Percent(sn.EntitiesCompleted, sn.EntitiesEstimated))})
		}
		if sn.BytesEstimated > 0 {
			p := 100 * float64(sn.BytesCompleted) / float64(sn.BytesEstimated)
			byts = append(byts, point{X: x, Y: p, Label: fmt.Sprintf("poll %d at %s: bytes %s", sn.Poll, when, present.Percent(sn.BytesCompleted, sn.BytesEstimated))})
		}
	}
	if len(ents) == 0 && len(byts) == 0 {
		return nil
	}
	last := snaps[len(snaps)-1].Time
	c := newChart("progress", "Progress over time",
		fmt.Sprintf("Entities and bytes exported, in percent of the estimate, from %s to %s (%s)",
			present.TimeIn(t0, loc, present.TimeLayout), present.TimeIn(last, loc, present.TimeLayout), present.HumanDuration(last.Sub(t0))), "time",
		[2]string{present.TimeIn(t0, loc, "15:04"), "+" + present.HumanDuration(last.Sub(t0))},
		func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" },
		series{Name: "entities %", Class: "s1", Points: ents}, series{Name: "bytes %", Class: "s2", Points: byts})
	// The axis spans the whole history, snapshots without an estimate too,
	// as its labels say.
	c.xRange(0, last.Sub(t0).Seconds())
	c.minYMax(100)
	return &c
}
