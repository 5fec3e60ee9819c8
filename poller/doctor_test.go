package poller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

func TestDoctorRunsEveryCheckWhateverTheOthersDo(t *testing.T) {
	ok := func(ctx context.Context) ([]poller.Check, error) {
		return []poller.Check{{OK: true, Detail: "fine"}}, nil
	}
	d := poller.Doctor{Timeout: 50 * time.Millisecond, Checks: []poller.CheckFunc{
		{Name: "errs", Target: "a", Run: func(ctx context.Context) ([]poller.Check, error) { return nil, errors.New("boom") }},
		{Name: "hangs", Target: "a", Run: func(ctx context.Context) ([]poller.Check, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		{Name: "panics", Run: func(ctx context.Context) ([]poller.Check, error) { panic("oops") }},
		{Name: "empty", Run: func(ctx context.Context) ([]poller.Check, error) { return nil, nil }},
		{Name: "long", Run: func(ctx context.Context) ([]poller.Check, error) {
			return []poller.Check{{Detail: strings.Repeat("x", 10*poller.MaxErrorText)}}, nil
		}},
		{Name: "ok", Target: "b", Run: ok},
	}}
	start := time.Now()
	got := d.Run(context.Background())
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Run took %v: the hanging check was not bounded", time.Since(start))
	}
	want := []struct {
		name, target string
		ok           bool
		detail       string
	}{
		{"errs", "a", false, "boom"},
		{"hangs", "a", false, "no answer within 50ms"},
		{"panics", "", false, "panicked: oops"},
		{"empty", "", false, "returned nothing"},
		{"long", "", false, "xxx"},
		{"ok", "b", true, "fine"},
	}
	if len(got) != len(want) {
		t.Fatalf("Run returned %d checks, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Target != w.target || g.OK != w.ok || !strings.Contains(g.Detail, w.detail) {
			t.Errorf("check %d = %+v, want name %q target %q ok %v detail containing %q", i, g, w.name, w.target, w.ok, w.detail)
		}
		if len(g.Detail) > poller.MaxErrorText {
			t.Errorf("check %d: detail of %d bytes, over MaxErrorText", i, len(g.Detail))
		}
	}
	if n := poller.Failed(got); n != 5 {
		t.Errorf("Failed = %d, want 5", n)
	}
}

func TestDoctorCancelledNamesTheChecksNotRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	got := poller.Doctor{Checks: []poller.CheckFunc{{Name: "x", Run: func(ctx context.Context) ([]poller.Check, error) {
		ran = true
		return []poller.Check{{OK: true}}, nil
	}}}}.Run(ctx)
	if ran || len(got) != 1 || got[0].OK || !strings.Contains(got[0].Detail, "not run") {
		t.Fatalf("Run on a cancelled context: ran %v, %+v", ran, got)
	}
}
