package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dsexport/dsexport/store"
)

// fill creates n operations in s a minute apart and returns their names
// newest first.
func fill(t *testing.T, s Store, n int) []string {
	t.Helper()
	var ns []string
	for i := range n {
		name := fmt.Sprintf("projects/example-proj/operations/page-%d", i)
		create(t, s, successful(name), base.Add(time.Duration(i)*time.Minute))
		ns = append(ns, name)
	}
	slices.Reverse(ns)
	return ns
}

// pages follows ListPage's cursors from the first page to the last and
// returns the names on each page.
func pages(t *testing.T, s Store, limit int) [][]string {
	t.Helper()
	var got [][]string
	cursor := ""
	for i := 0; ; i++ {
		if i > 10 {
			t.Fatalf("ListPage(%d) still has a next page after %d pages: %v", limit, i, got)
		}
		recs, next, err := s.ListPage(context.Background(), limit, cursor)
		if err != nil {
			t.Fatalf("ListPage(%d, %q): %v", limit, cursor, err)
		}
		got = append(got, names(recs))
		if next == "" {
			return got
		}
		cursor = next
	}
}

// testListPage opens a store for each case: it is the one subtest with
// subtests of its own.
func testListPage(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		records, limit int
		want           [][]int // indexes into the names, newest first
	}{
		{records: 0, limit: 2, want: [][]int{nil}},
		{records: 5, limit: 2, want: [][]int{{0, 1}, {2, 3}, {4}}},
		// A full last page says there is no next one instead of leading to an empty page.
		{records: 4, limit: 2, want: [][]int{{0, 1}, {2, 3}}},
		{records: 3, limit: 100, want: [][]int{{0, 1, 2}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d records by %d", tt.records, tt.limit), func(t *testing.T) {
			s := open(t)
			ns := fill(t, s, tt.records)
			var want [][]string
			for _, page := range tt.want {
				var p []string
				for _, i := range page {
					p = append(p, ns[i])
				}
				want = append(want, p)
			}
			if got := pages(t, s, tt.limit); !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("pages of %d = %q; want %q", tt.limit, got, want)
			}
		})
	}
}

// testListPageCursorKeepsPlace checks that a cursor is a place in the list,
// not a count: a record created after the first page was read does not
// shift the second.
func testListPageCursorKeepsPlace(t *testing.T, s Store) {
	ctx := context.Background()
	ns := fill(t, s, 4)
	first, next, err := s.ListPage(ctx, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(first), ns[:2]; !slices.Equal(got, want) {
		t.Fatalf("first page = %q; want %q", got, want)
	}
	create(t, s, running(opName("page-newest")), base.Add(time.Hour))
	second, next, err := s.ListPage(ctx, 2, next)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(second), ns[2:]; !slices.Equal(got, want) {
		t.Fatalf("second page after a newer record = %q; want %q", got, want)
	}
	if next != "" {
		t.Fatalf("second page's next cursor = %q; want none", next)
	}
}

func testListPageRecord(t *testing.T, s Store) {
	ns := fill(t, s, 1)
	recs, _, err := s.ListPage(context.Background(), 1, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Get(context.Background(), ns[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Name != want.Name || recs[0].EntitiesCompleted != want.EntitiesCompleted ||
		!recs[0].Created.Equal(want.Created) || recs[0].OutputURL != want.OutputURL {
		t.Fatalf("ListPage = %+v; want [%+v]", recs, want)
	}
}

// testListPageInvalid includes cursors that decode as base64 but that no
// ListPage returned ("e30" is "{}"): Datastore refuses those only when it
// runs the query.
func testListPageInvalid(t *testing.T, s Store) {
	fill(t, s, 1)
	for _, cursor := range []string{"not a cursor!", "AAAA", "Zm9vYmFy", "e30"} {
		_, _, err := s.ListPage(context.Background(), 2, cursor)
		if !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("ListPage(2, %q) error = %v; want ErrInvalidCursor", cursor, err)
		}
	}
	if _, _, err := s.ListPage(context.Background(), 0, ""); err == nil {
		t.Errorf("ListPage(0, \"\") succeeded; want an error")
	}
}
