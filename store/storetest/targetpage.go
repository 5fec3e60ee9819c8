package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
)

// TargetPager is a Store that lists one target's records a page at a time,
// as the server's target pages do.
type TargetPager interface {
	Store
	ListTargetPage(ctx context.Context, target string, limit int, cursor string) ([]poller.Record, string, error)
}

// RunTargetPage checks ListTargetPage against the stores open returns: a
// target's pages hold its records only, newest first, cursor after cursor;
// "" lists every target's, as ListPage does.
func RunTargetPage(t *testing.T, open func(t *testing.T) TargetPager) {
	t.Run("ListTargetPage", func(t *testing.T) {
		s := open(t)
		var shop, other, all []string
		for i := range 7 {
			name := opName(fmt.Sprintf("target-%d", i))
			op := successful(name)
			switch {
			case i%3 == 2:
				op.Target = "other"
				other = append(other, name)
			case i == 0:
				// No target: a record of the environment's single target.
			default:
				op.Target = "shop"
				shop = append(shop, name)
			}
			create(t, s, op, base.Add(time.Duration(i)*time.Minute))
			all = append(all, name)
		}
		for _, ns := range [][]string{shop, other, all} {
			slices.Reverse(ns)
		}
		for _, tt := range []struct {
			target string
			want   []string
		}{{"shop", shop}, {"other", other}, {"", all}, {"none", nil}} {
			var got []string
			cursor := ""
			for i := 0; ; i++ {
				if i > 10 {
					t.Fatalf("ListTargetPage(%q, 2) still has a next page after %d pages", tt.target, i)
				}
				recs, next, err := s.ListTargetPage(context.Background(), tt.target, 2, cursor)
				if err != nil {
					t.Fatalf("ListTargetPage(%q, 2, %q): %v", tt.target, cursor, err)
				}
				if len(recs) > 2 || (next != "" && len(recs) != 2) {
					t.Fatalf("ListTargetPage(%q, 2, %q) = %d records, next %q", tt.target, cursor, len(recs), next)
				}
				for _, r := range recs {
					if tt.target != "" && r.Target != tt.target {
						t.Errorf("ListTargetPage(%q) holds %s of target %q", tt.target, r.Name, r.Target)
					}
				}
				got = append(got, names(recs)...)
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListTargetPage(%q) pages = %v; want %v", tt.target, got, tt.want)
			}
		}
		if _, _, err := s.ListTargetPage(context.Background(), "shop", 2, "e30"); !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("ListTargetPage with a foreign cursor = %v; want ErrInvalidCursor", err)
		}
		if _, _, err := s.ListTargetPage(context.Background(), "shop", 0, ""); err == nil {
			t.Errorf("ListTargetPage(limit 0) succeeded; want an error")
		}
	})
}
