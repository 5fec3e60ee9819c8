package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/store"
)

// pageStore returns a store in a project of its own holding n operations
// created a minute apart, and their names newest first.
func pageStore(t *testing.T, n int) (*store.Store, []string) {
	t.Helper()
	t.Setenv("DATASTORE_EMULATOR_HOST", emulatortest.Host(t))
	ctx := context.Background()
	s, err := store.New(ctx, emulatortest.Project(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var names []string
	for i := range n {
		name := fmt.Sprintf("projects/example-proj/operations/page-%d", i)
		if _, err := s.Create(ctx, successful(name), base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	slices.Reverse(names)
	return s, names
}

// pages follows ListPage's cursors from the first page to the last and
// returns the names on each page.
func pages(t *testing.T, s *store.Store, limit int) [][]string {
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
		var names []string
		for _, r := range recs {
			names = append(names, r.Name)
		}
		got = append(got, names)
		if next == "" {
			return got
		}
		cursor = next
	}
}

func TestListPage(t *testing.T) {
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
			s, names := pageStore(t, tt.records)
			var want [][]string
			for _, page := range tt.want {
				var p []string
				for _, i := range page {
					p = append(p, names[i])
				}
				want = append(want, p)
			}
			if got := pages(t, s, tt.limit); !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("pages of %d = %q; want %q", tt.limit, got, want)
			}
		})
	}
}

func TestListPageRecord(t *testing.T) {
	s, names := pageStore(t, 1)
	recs, _, err := s.ListPage(context.Background(), 1, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Get(context.Background(), names[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Name != want.Name || recs[0].EntitiesCompleted != want.EntitiesCompleted ||
		!recs[0].Created.Equal(want.Created) || recs[0].OutputURL != want.OutputURL {
		t.Fatalf("ListPage = %+v; want [%+v]", recs, want)
	}
}

func TestListPageInvalid(t *testing.T) {
	s, _ := pageStore(t, 1)
	for _, cursor := range []string{"not a cursor!", "AAAA", "Zm9vYmFy"} {
		_, _, err := s.ListPage(context.Background(), 2, cursor)
		if !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("ListPage(2, %q) error = %v; want ErrInvalidCursor", cursor, err)
		}
	}
	if _, _, err := s.ListPage(context.Background(), 0, ""); err == nil {
		t.Errorf("ListPage(0, \"\") succeeded; want an error")
	}
}
