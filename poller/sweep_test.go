package poller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/tasks"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

// queue returns a Cloud Tasks dispatcher on a fake queue.
func queue(t *testing.T) (*tasks.Dispatcher, *tasksfake.Server) {
	t.Helper()
	fake := tasksfake.New(t)
	q := "projects/dsexport-tests/locations/us-central1/queues/dsexport-poll"
	fake.AddQueue(q)
	d, err := tasks.New(context.Background(), tasks.Config{
		Queue: q, Target: tasks.HTTP, URL: "https://dsexport.example", ServiceAccount: "tasks@example.iam.gserviceaccount.com",
		Endpoint: fake.Addr(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, fake
}

// queuedRig is a rig whose poller hands operations to a fake Cloud Tasks
// queue, with configure applied after.
func queuedRig(t *testing.T, maxPolls int, configure ...func(*poller.Config)) (*rig, *tasksfake.Server) {
	t.Helper()
	d, fake := queue(t)
	withQueue := func(c *poller.Config) { c.Dispatcher = d }
	return &rig{testrig.New(t, maxPolls, append([]func(*poller.Config){withQueue}, configure...)...)}, fake
}

// resumes returns the sweep's tasks (named after a round) that poll name.
func resumes(fake *tasksfake.Server, name string) int {
	n := 0
	for _, task := range fake.Tasks() {
		if strings.Contains(task.GetName(), "-r") && strings.Contains(string(task.GetHttpRequest().GetBody()), name) {
			n++
		}
	}
	return n
}

func TestSweepResumesOrphans(t *testing.T) {
	ctx := context.Background()
	r, fake := queuedRig(t, 10)
	orphan := r.start(t, adminfake.Running("PROCESSING", 1, 2, 1, 2), adminfake.Successful(2, 2))
	alive := r.start(t, adminfake.Running("PROCESSING", 1, 2, 1, 2))
	// Both were being polled; the first poller died with its lease held.
	now := r.Clock.Now()
	if _, ok, err := r.Store.AcquireLease(ctx, orphan.Name, "dead-instance", now, 3*time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	r.Clock.Advance(5 * time.Minute)
	if _, ok, err := r.Store.AcquireLease(ctx, alive.Name, "live-instance", r.Clock.Now(), 3*time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}

	sw, err := r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}})
	if err != nil {
		t.Fatal(err)
	}
	if res := sw; res.Pending != 2 || res.Resumed != 1 {
		t.Fatalf("Sweep = %+v; want 2 pending, 1 resumed", res)
	}
	if got, want := resumes(fake, orphan.Name), 1; got != want {
		t.Fatalf("queue holds %d resumes of %s; want %d (tasks %v)", got, orphan.Name, want, fake.Tasks())
	}
	if got, want := resumes(fake, alive.Name), 0; got != want {
		t.Fatalf("queue holds %d resumes of the live %s; want %d", got, alive.Name, want)
	}
	// A second sweep in the same round hands it over again under the same
	// task name: Cloud Tasks keeps one.
	if _, err := r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}}); err != nil {
		t.Fatal(err)
	}
	if got := resumes(fake, orphan.Name); got != 1 {
		t.Errorf("queue holds %d resumes after a second sweep; want 1", got)
	}
	// The resumed task polls it: the dead lease is taken over.
	res, err := r.Poller.Poll(ctx, orphan.Name)
	if err != nil || res.Record.Outcome != poller.OutcomeSuccess {
		t.Fatalf("Poll of the resumed operation = %q, %v; want success", res.Record.Outcome, err)
	}
}

func TestSweepReportsPending(t *testing.T) {
	ctx := context.Background()
	r, _ := queuedRig(t, 10)
	started := r.start(t, adminfake.Successful(10, 100))
	// Slack refuses the report (the bot is not in the channel).
	r.Slack.SetChannels("#elsewhere")
	if _, err := r.Poller.Poll(ctx, started.Name); err == nil {
		t.Fatal("Poll succeeded though Slack refused the report")
	}
	res, err := r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}})
	if err == nil || res.StillPending != 1 || res.Reported != 0 {
		t.Fatalf("Sweep while Slack refuses = %+v, %v; want 1 still pending and an error", res, err)
	}
	r.Slack.SetChannels(testrig.SlackChannel)
	res, err = r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}})
	if err != nil || res.Reported != 1 {
		t.Fatalf("Sweep = %+v, %v; want 1 reported", res, err)
	}
	r.onlyMessage(t)
	if got, want := r.Admin.Gets(started.Name), 1; got != want {
		t.Errorf("GETs = %d; want %d (the sweep reports without polling)", got, want)
	}
	res, err = r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}})
	if err != nil || res.Pending != 0 {
		t.Fatalf("Sweep after the report = %+v, %v; want nothing pending", res, err)
	}
}

func TestStalenessAlarm(t *testing.T) {
	ctx := context.Background()
	r, _ := queuedRig(t, 10, func(c *poller.Config) { c.StaleAfter = 26 * time.Hour })
	sweep := func() poller.SweepResult {
		t.Helper()
		res, err := r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if sweep().Alarm {
		t.Fatal("alarm raised at the first sweep")
	}
	r.Clock.Advance(25 * time.Hour)
	if sweep().Alarm {
		t.Fatal("alarm raised after 25h without a success; want it after 26h")
	}
	r.Clock.Advance(2 * time.Hour)
	if !sweep().Alarm {
		t.Fatal("no alarm after 27h without a success")
	}
	if got, want := r.onlyMessage(t).Attachments[0].Title, "No Datastore export of "+r.Project+" has succeeded since 2026-11-23 03:00:00 UTC"; got != want {
		t.Errorf("alarm title = %q; want %q", got, want)
	}
	r.Clock.Advance(10 * time.Hour)
	if sweep().Alarm || len(r.Slack.Messages()) != 1 {
		t.Fatalf("alarm repeated before a success: %d messages", len(r.Slack.Messages()))
	}
	// A success ends the stretch; 27h later the alarm is raised again, once.
	started := r.start(t, adminfake.Successful(10, 100))
	if _, err := r.Poller.Poll(ctx, started.Name); err != nil {
		t.Fatal(err)
	}
	r.Clock.Advance(27 * time.Hour)
	if !sweep().Alarm || sweep().Alarm {
		t.Fatal("want exactly one alarm 27h after the success")
	}
	msgs := r.Slack.Messages()
	if len(msgs) != 3 || !strings.Contains(msgs[2].Attachments[0].Title, "has succeeded for over 26h") {
		t.Fatalf("messages = %d, last %q; want 3, the last a second alarm", len(msgs), msgs[len(msgs)-1].Attachments[0].Title)
	}
}

func TestShrinkWarning(t *testing.T) {
	ctx := context.Background()
	r := &rig{testrig.New(t, 10, func(c *poller.Config) { c.ShrinkWarn = 0.10 })}
	export := func(entities int64) string {
		t.Helper()
		started := r.start(t, adminfake.Successful(entities, entities*10))
		if _, err := r.Poller.Poll(ctx, started.Name); err != nil {
			t.Fatal(err)
		}
		msgs := r.Slack.Messages()
		return msgs[len(msgs)-1].Attachments[0].Text
	}
	if text := export(1000); strings.Contains(text, "fewer") {
		t.Errorf("first success warns: %s", text)
	}
	text := export(850)
	if !strings.Contains(text, "850 entities, 15.0% fewer than the 1,000 of the previous successful export") {
		t.Errorf("a 15%% shrink does not warn with both counts:\n%s", text)
	}
	if text := export(800); strings.Contains(text, "fewer") {
		t.Errorf("a 5.9%% shrink warns:\n%s", text)
	}
}

func TestNoDoubleStart(t *testing.T) {
	ctx := context.Background()
	r := &rig{testrig.New(t, 10, func(c *poller.Config) {
		c.CronWindow = time.Hour
		c.StartsPerMinute = 3
	})}
	req := poller.ExportRequest{Project: r.Project, OutputURLPrefix: "gs://example-backups/daily", Trigger: poller.TriggerCron}
	first, err := r.Poller.Start(ctx, req)
	if err != nil || first.Status != poller.Started {
		t.Fatal(first.Status, err)
	}
	// App Engine retries the cron request.
	again, err := r.Poller.Start(ctx, req)
	if err != nil || again.Status != poller.Duplicate || again.Record.Name != first.Record.Name {
		t.Fatalf("repeated cron Start = %v %q, %v; want duplicate of %q", again.Status, again.Record.Name, err, first.Record.Name)
	}
	manual := req
	manual.Trigger = poller.TriggerManual
	if running, err := r.Poller.Start(ctx, manual); err != nil || running.Status != poller.Running || running.Record.Name != first.Record.Name {
		t.Fatalf("manual Start while the cron export runs = %v %q, %v; want running, naming %s", running.Status, running.Record.Name, err, first.Record.Name)
	}
	if got := len(r.Admin.Exports()); got != 1 {
		t.Fatalf("Admin API got %d exports; want 1", got)
	}
	manual.Force = true
	if res, err := r.Poller.Start(ctx, manual); err != nil || res.Status != poller.Started {
		t.Fatalf("forced Start = %v, %v", res.Status, err)
	}
	other := manual
	other.Kinds = []string{"Order"}
	if res, err := r.Poller.Start(ctx, other); err != nil || res.Status != poller.Started {
		t.Fatalf("Start of another filter = %v, %v", res.Status, err)
	}
	other.Kinds = []string{"User"}
	if _, err := r.Poller.Start(ctx, other); !errors.Is(err, poller.ErrRateLimited) {
		t.Fatalf("fourth Start in a minute = %v; want ErrRateLimited", err)
	}
	if got := len(r.Admin.Exports()); got != 3 {
		t.Fatalf("Admin API got %d exports; want 3", got)
	}
}

// TestCronWindowOfASchedule: a schedule that runs more often than the
// poller's cron window (every 30 minutes against an hour) has a window of
// its own, half its period, so that its next start is not taken for a
// retry of the one before; a cron retry within that half is still one.
func TestCronWindowOfASchedule(t *testing.T) {
	ctx := context.Background()
	r := &rig{testrig.New(t, 10, func(c *poller.Config) { c.CronWindow = time.Hour })}
	req := poller.ExportRequest{Project: r.Project, OutputURLPrefix: "gs://example-backups/halfhourly", Trigger: poller.TriggerCron,
		CronWindow: 15 * time.Minute}
	first, err := r.Poller.Start(ctx, req)
	if err != nil || first.Status != poller.Started {
		t.Fatal(first.Status, err)
	}
	r.Clock.Advance(5 * time.Minute)
	if again, err := r.Poller.Start(ctx, req); err != nil || again.Status != poller.Duplicate {
		t.Fatalf("cron retry 5 minutes later = %v, %v; want a duplicate", again.Status, err)
	}
	r.Clock.Advance(25 * time.Minute)
	next, err := r.Poller.Start(ctx, req)
	if err != nil || next.Status != poller.Started || next.Record.Name == first.Record.Name {
		t.Fatalf("the schedule's next start 30 minutes later = %v %q, %v; want a new export", next.Status, next.Record.Name, err)
	}
}
