package store

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/datastore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsexport/dsexport/poller"
)

// ErrInvalidCursor is wrapped by ListPage's error when its cursor is not one
// that ListPage returned: garbled, or from another query.
var ErrInvalidCursor = errors.New("invalid cursor")

// ListPage returns up to limit records, newest first by Created, starting at
// cursor ("" for the first page), and the cursor of the next page: empty when
// there is no record after this page. limit must be positive.
func (s *Store) ListPage(ctx context.Context, limit int, cursor string) ([]poller.Record, string, error) {
	return s.ListTargetPage(ctx, "", limit, cursor)
}

// ListTargetPage is ListPage of one target's records ("" : every target's,
// as ListTarget). Its cursors are of its target's query: a cursor of
// another target's pages, or of ListPage's, may be refused. The query on
// target ordered by created needs the composite index ListTarget needs.
func (s *Store) ListTargetPage(ctx context.Context, target string, limit int, cursor string) ([]poller.Record, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("list operations: limit %d is not positive", limit)
	}
	q := datastore.NewQuery(operationKind).Order("-created")
	if target != "" {
		q = q.FilterField("target", "=", target)
	}
	if cursor != "" {
		c, err := datastore.DecodeCursor(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list operations from cursor %q: %w", cursor, ErrInvalidCursor)
		}
		q = q.Start(c)
	}
	// One record more than asked for tells whether a next page exists, so the
	// last page says so instead of leading to an empty one.
	it := s.client.Run(ctx, q.Limit(limit+1))
	var recs []poller.Record
	var end datastore.Cursor // after the page's last record
	for {
		var e operationEntity
		key, err := it.Next(&e)
		if errors.Is(err, iterator.Done) {
			return recs, "", nil
		}
		if err != nil {
			if cursor != "" && status.Code(err) == codes.InvalidArgument {
				// Datastore refuses a cursor it cannot read or that belongs
				// to another query; base64 decoding alone accepts both.
				return nil, "", fmt.Errorf("list operations from cursor %q: %w: %v", cursor, ErrInvalidCursor, err)
			}
			return nil, "", fmt.Errorf("list operations: %w", err)
		}
		if len(recs) == limit {
			// The extra record exists: the next page starts after the
			// last record of this one.
			break
		}
		recs = append(recs, e.record(key.Name))
		if len(recs) == limit {
			if end, err = it.Cursor(); err != nil {
				return nil, "", fmt.Errorf("list operations: cursor: %w", err)
			}
		}
	}
	return recs, end.String(), nil
}
