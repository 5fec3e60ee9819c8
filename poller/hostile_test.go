package poller_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/poller"
)

// TestHugeAnswersAreCountedPolls: a 502 with a 20 MB body and a FAILED
// operation with a 20 MB message used to be stored as they came, the store
// write failed, the poll was never counted, and polling went on past
// MaxPolls with no report. Now each is a counted poll with a bounded error,
// and the budget ends in one timeout report.
func TestHugeAnswersAreCountedPolls(t *testing.T) {
	huge := strings.Repeat("x", 20<<20)
	for _, tt := range []struct {
		name string
		step adminfake.Step
	}{
		{"502 with a 20 MB body", adminfake.HTTPBody(http.StatusBadGateway, huge)},
		{"FAILED with a 20 MB message", adminfake.Failed(13, huge)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, 3)
			started := r.start(t, tt.step)
			res, err := r.Poller.Poll(context.Background(), started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != poller.Ended || !res.Record.Reported() {
				t.Fatalf("Poll = %v, reported %v; want ended and reported", res.Status, res.Record.Reported())
			}
			if got := r.Admin.Gets(started.Name); got > 3 {
				t.Errorf("%d GETs; want at most MaxPolls 3", got)
			}
			rec, err := r.Store.Get(context.Background(), started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(rec.LastError) + len(rec.ErrorMessage); n > 2*poller.MaxErrorText {
				t.Errorf("stored error text %d bytes; want it bounded", n)
			}
			m := r.onlyMessage(t)
			text := m.Attachments[0].Text
			if !strings.Contains(text, "gcloud datastore operations describe "+started.Name) {
				t.Errorf("report %q; want the describe command whole", text)
			}
		})
	}
}

// TestForeignAnswerIsAFailedRead: a GET answered with another operation's
// name, or one of another project, used to be taken as ours: "succeeded"
// with someone else's output URL, and the record's project rewritten. Now it
// is a failed read, counted, and the export ends in a timeout report that
// names nobody else's data.
func TestForeignAnswerIsAFailedRead(t *testing.T) {
	for _, tt := range []struct{ name, answer string }{
		{"another operation", "projects/PROJECT/operations/someone-elses"},
		{"another project", "projects/other-proj/operations/someone-elses"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, 2)
			answer := strings.ReplaceAll(tt.answer, "PROJECT", r.Project)
			started := r.start(t, adminfake.Named(answer, adminfake.Successful(1000, 10000)))
			res, err := r.Poller.Poll(context.Background(), started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if res.Record.Outcome == poller.OutcomeSuccess {
				t.Fatalf("outcome %q; want no success from an answer about %s", res.Record.Outcome, answer)
			}
			rec, err := r.Store.Get(context.Background(), started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Project != r.Project || rec.OutputURL != "" {
				t.Errorf("record project %q, output %q; want %q and no output taken from the foreign answer", rec.Project, rec.OutputURL, r.Project)
			}
			for _, m := range r.Slack.Messages() {
				if strings.Contains(m.Attachments[0].Title, "succeeded") {
					t.Errorf("reported %q; want no success", m.Attachments[0].Title)
				}
			}
		})
	}
}
