package memstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
)

// newestFirst is the order of List and ListPage: newest first by Created,
// then by name, as Datastore orders equal properties by key.
func newestFirst(a, b poller.Record) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// sorted returns a copy of every record in List's order.
func (s *Store) sorted() []poller.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]poller.Record, 0, len(s.ops))
	for _, e := range s.ops {
		recs = append(recs, clone(e.rec))
	}
	slices.SortFunc(recs, newestFirst)
	return recs
}

// List returns up to limit records, newest first by Created; limit <= 0 means
// all of them.
func (s *Store) List(ctx context.Context, limit int) ([]poller.Record, error) {
	return s.ListTarget(ctx, "", limit)
}

// ListTarget is List of one target's records ("" : every target's).
func (s *Store) ListTarget(ctx context.Context, target string, limit int) ([]poller.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	recs := s.sorted()
	if target != "" {
		recs = slices.DeleteFunc(recs, func(r poller.Record) bool { return r.Target != target })
	}
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return recs, nil
}

// cursor is where a page ended: after the record created at Created and
// named Name. A position rather than an offset, like a Datastore cursor, so
// that records created meanwhile do not shift the next page.
type cursor struct {
	Created time.Time `json:"c"`
	Name    string    `json:"n"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c) // a time and a string always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, err
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, err
	}
	if c.Name == "" {
		return cursor{}, fmt.Errorf("cursor %q names no record", s)
	}
	return c, nil
}

// ListPage returns up to limit records, newest first by Created, starting at
// cursor ("" for the first page), and the cursor of the next page: empty when
// there is no record after this page. limit must be positive; a cursor that
// ListPage did not return is an error wrapping store.ErrInvalidCursor.
func (s *Store) ListPage(ctx context.Context, limit int, cur string) ([]poller.Record, string, error) {
	return s.ListTargetPage(ctx, "", limit, cur)
}

// ListTargetPage is ListPage of one target's records ("" : every target's,
// as ListTarget).
func (s *Store) ListTargetPage(ctx context.Context, target string, limit int, cur string) ([]poller.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("list operations: limit %d is not positive", limit)
	}
	recs := s.sorted()
	if target != "" {
		recs = slices.DeleteFunc(recs, func(r poller.Record) bool { return r.Target != target })
	}
	if cur != "" {
		c, err := decodeCursor(cur)
		if err != nil {
			return nil, "", fmt.Errorf("list operations from cursor %q: %w: %v", cur, store.ErrInvalidCursor, err)
		}
		at := poller.Record{Operation: poller.Operation{Name: c.Name}, Created: c.Created}
		i, found := slices.BinarySearchFunc(recs, at, newestFirst)
		if found {
			i++
		}
		recs = recs[i:]
	}
	if len(recs) == 0 {
		// Datastore's page of nothing is nil.
		return nil, "", nil
	}
	if len(recs) <= limit {
		return recs, "", nil
	}
	recs = recs[:limit:limit]
	last := recs[limit-1]
	return recs, cursor{Created: last.Created, Name: last.Name}.String(), nil
}
