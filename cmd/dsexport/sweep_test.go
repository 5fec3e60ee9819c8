package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
)

// TestInlineServeSweepsByItself: a serve without Cloud Tasks has no cron to
// sweep for it, so it sweeps every DSEXPORT_SWEEP_EVERY by itself. An
// export that ended unreported after serve's start-up sweep (its poller
// died between the outcome and the report) is reported without any
// request to /cron/sweep.
func TestInlineServeSweepsByItself(t *testing.T) {
	st, project := testrig.Store(t)
	slack := slackfake.New(t, "xoxb-sweep")
	vars := map[string]string{
		"PORT":                    "0",
		"GOOGLE_CLOUD_PROJECT":    project,
		"DSEXPORT_OUTPUT_PREFIX":  "gs://example-backups/daily",
		"DATASTORE_EMULATOR_HOST": emulatortest.Host(t),
		"SLACK_TOKEN":             "xoxb-sweep",
		"SLACK_CHANNEL":           "#backups",
		"SLACK_API_URL":           slack.URL(),
		"DSEXPORT_SWEEP_EVERY":    "200ms",
		"DSEXPORT_ADMIN_ENDPOINT": adminfake.New(t).URL(),
	}
	srv := serveInProcess(t, vars, []string{"serve"})
	eventually(t, "the start-up sweep", func() bool { return strings.Contains(srv.stderr.String(), "msg=sweep") })
	ctx := context.Background()
	name := "projects/" + project + "/operations/ended-unreported"
	now := time.Now()
	op := poller.Operation{Name: name, Project: project, Done: true, State: poller.StateSuccessful,
		OutputURLPrefix: "gs://example-backups/daily", OutputURL: "gs://example-backups/daily/x",
		EntitiesCompleted: 10, BytesCompleted: 100, StartTime: now.Add(-time.Minute), EndTime: now}
	if _, err := st.Create(ctx, op, now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetOutcome(ctx, name, poller.OutcomeSuccess, now); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sweep's report", func() bool { return len(slack.Messages()) > 0 })
	if got := slack.Messages()[0].Attachments[0].Title; got != "Datastore export succeeded" {
		t.Fatalf("report title = %q; want the success", got)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
}
