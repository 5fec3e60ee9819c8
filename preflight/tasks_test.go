package preflight_test

import (
	"context"
	"testing"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/preflight"
	"github.com/dsexport/dsexport/tasks"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

// TestTasksCheck asks tasksfake through the Cloud Tasks client for a queue
// that exists, one that does not (fixed by gcloud tasks queues create),
// and a paused one.
func TestTasksCheck(t *testing.T) {
	const queue = "projects/doctor-proj/locations/europe-west1/queues/dsexport-poll"
	fake := tasksfake.New(t)
	fake.AddQueue(queue)
	client, err := tasks.NewClient(context.Background(), fake.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	run := func(q string) poller.Check {
		t.Helper()
		checks := poller.Doctor{Checks: []poller.CheckFunc{preflight.TasksCheck(client, q)}}.Run(context.Background())
		if len(checks) != 1 || checks[0].Name != preflight.CheckQueue {
			t.Fatalf("checks = %+v; want one %q", checks, preflight.CheckQueue)
		}
		t.Logf("%+v", checks[0])
		return checks[0]
	}
	if c := run(queue); !c.OK || c.Warning || c.Fix != "" {
		t.Errorf("existing queue: %+v; want ok", c)
	}
	missing := "projects/doctor-proj/locations/us-central1/queues/nope"
	if c, want := run(missing), "gcloud tasks queues create nope --location=us-central1 --project=doctor-proj"; c.OK || c.Fix != want {
		t.Errorf("missing queue: %+v; want a failure with fix %q", c, want)
	}
	fake.SetPaused(queue)
	if c, want := run(queue), "gcloud tasks queues resume dsexport-poll --location=europe-west1 --project=doctor-proj"; c.OK || c.Fix != want {
		t.Errorf("paused queue: %+v; want a failure with fix %q", c, want)
	}
}
