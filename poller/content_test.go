package poller_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/poller"
)

func TestCheckContent(t *testing.T) {
	full := poller.Content{Files: 2, Entities: 5, Kinds: []poller.KindCount{
		{Namespace: "", Kind: "Order", Entities: 3},
		{Namespace: "ns2", Kind: "Order", Entities: 2},
	}}
	cut := full
	cut.KindsCut = true
	cut.Kinds = append(append([]poller.KindCount(nil), full.Kinds[:1]...), poller.KindCount{Kind: poller.CutKind, Entities: 2})
	prev := &poller.Content{Files: 2, Entities: 9, Kinds: []poller.KindCount{
		{Kind: "Line", Entities: 4},
		{Kind: "Order", Entities: 3},
		{Namespace: "ns2", Kind: "Order", Entities: 2},
		{Kind: poller.CutKind, Entities: 7},
	}}
	type f struct {
		rule          poller.ContentRule
		ns, kind      string
		expected, got int64
	}
	tests := []struct {
		name   string
		c      poller.Content
		op     poller.Operation
		prev   *poller.Content
		source map[string]int64
		want   []f
	}{
		{"all agree", full, poller.Operation{EntitiesCompleted: 5}, &full,
			map[string]int64{"/Order": 3, "ns2/Order": 2}, nil},
		{"no operation count: not compared", full, poller.Operation{}, nil, nil, nil},
		{"no output file", poller.Content{Entities: 0}, poller.Operation{}, nil, nil,
			[]f{{poller.ContentEmpty, "", "", 0, 0}}},
		{"files but no entity", poller.Content{Files: 3}, poller.Operation{}, nil, nil,
			[]f{{poller.ContentEmpty, "", "", 0, 0}}},
		{"operation says more", full, poller.Operation{EntitiesCompleted: 6}, nil, nil,
			[]f{{poller.ContentOperationCount, "", "", 6, 5}}},
		{"a kind gone (the cut entry of the previous is no kind)", full, poller.Operation{}, prev, nil,
			[]f{{poller.ContentKindGone, "", "Line", 4, 0}}},
		{"a kind maybe in the cut entry is not gone", cut, poller.Operation{}, prev, nil, nil},
		{"source counts differ, missing kind, kind with a slash", full, poller.Operation{}, nil,
			map[string]int64{"/Order": 4, "ns2/Order": 2, "ns2/a/b": 1},
			[]f{{poller.ContentSourceCount, "", "Order", 4, 3}, {poller.ContentSourceCount, "ns2", "a/b", 1, 0}}},
		{"source kind maybe in the cut entry", cut, poller.Operation{}, nil, map[string]int64{"ns2/Order": 2}, nil},
		{"everything at once, in order", poller.Content{}, poller.Operation{EntitiesCompleted: 1}, prev,
			map[string]int64{"/Line": 4},
			[]f{{poller.ContentEmpty, "", "", 0, 0}, {poller.ContentOperationCount, "", "", 1, 0},
				{poller.ContentKindGone, "", "Line", 4, 0}, {poller.ContentKindGone, "", "Order", 3, 0},
				{poller.ContentKindGone, "ns2", "Order", 2, 0}, {poller.ContentSourceCount, "", "Line", 4, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := poller.CheckContent(tt.c, tt.op, tt.prev, tt.source)
			var gotF []f
			for _, g := range got {
				gotF = append(gotF, f{g.Rule, g.Namespace, g.Kind, g.Expected, g.Got})
				if g.Text == "" || !strings.HasSuffix(g.Text, ".") {
					t.Errorf("finding %+v: no sentence", g)
				}
				if g.Kind != "" && !strings.Contains(g.Text, `"`+g.Kind+`"`) {
					t.Errorf("finding %+v: text does not name the kind", g)
				}
				if g.Namespace != "" && !strings.Contains(g.Text, `namespace "`+g.Namespace+`"`) {
					t.Errorf("finding %+v: text does not name the namespace", g)
				}
			}
			if !reflect.DeepEqual(gotF, tt.want) {
				t.Errorf("findings\n got %+v\nwant %+v", gotF, tt.want)
			}
		})
	}
}

func TestCheckContentBoundsNames(t *testing.T) {
	long := strings.Repeat("k", 5000)
	got := poller.CheckContent(poller.Content{Files: 1, Entities: 1}, poller.Operation{}, nil, map[string]int64{"/" + long: 1})
	if len(got) != 1 || got[0].Kind != long || len(got[0].Text) > 600 {
		t.Fatalf("findings %+v: want one with the kind whole and a short text", got)
	}
}
