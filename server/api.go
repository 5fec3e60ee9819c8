package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
)

// This file is the JSON API: the records and their snapshots as they are stored.

// snapshotJSON is a snapshot in the API.
type snapshotJSON struct {
	Poll              int          `json:"poll"`
	Time              string       `json:"time"`
	State             poller.State `json:"state"`
	Done              bool         `json:"done"`
	EntitiesCompleted int64        `json:"entitiesCompleted"`
	EntitiesEstimated int64        `json:"entitiesEstimated"`
	BytesCompleted    int64        `json:"bytesCompleted"`
	BytesEstimated    int64        `json:"bytesEstimated"`
}

func (s *Server) apiList(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := apiLimit
	if q.Has("limit") {
		v := q.Get("limit")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > apiLimitMax {
			return badRequest("limit: %q is not a whole number from 1 to %d", poller.BoundText(v, maxQuoted), apiLimitMax)
		}
		limit = n
	}
	// ?target=NAME lists that target's records; without it, every target's.
	target := ""
	if q.Get("target") != "" {
		t, err := s.target(q.Get("target"), true)
		if err != nil {
			return err
		}
		target = t.Name
	}
	cursor := q.Get("cursor")
	page, next, err := recs.ListTargetPage(r.Context(), target, limit, cursor)
	if errors.Is(err, store.ErrInvalidCursor) {
		return badRequest("cursor: %q is not a cursor this API returned; start again without one", poller.BoundText(cursor, maxQuoted))
	}
	if err != nil {
		return err
	}
	if page == nil {
		page = []poller.Record{}
	}
	writeJSON(w, http.StatusOK, struct {
		Exports []poller.Record `json:"exports"`
		Next    string          `json:"next"`
	}{page, next})
	return nil
}

func (s *Server) apiExport(w http.ResponseWriter, r *http.Request) error {
	rec, snaps, err := s.lookup(r.Context(), r)
	if err != nil {
		return err
	}
	out := make([]snapshotJSON, len(snaps))
	for i, sn := range snaps {
		out[i] = snapshotJSON{
			Poll: sn.Poll, Time: sn.Time.UTC().Format(time.RFC3339Nano), State: sn.State, Done: sn.Done,
			EntitiesCompleted: sn.EntitiesCompleted, EntitiesEstimated: sn.EntitiesEstimated,
			BytesCompleted: sn.BytesCompleted, BytesEstimated: sn.BytesEstimated,
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Export    poller.Record  `json:"export"`
		Snapshots []snapshotJSON `json:"snapshots"`
	}{rec, out})
	return nil
}
