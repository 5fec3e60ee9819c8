package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/tasks"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

// TestPollBudgetContinuation follows an export through Cloud Tasks: the
// trigger enqueues the first poll task; a poll request that spends its budget
// enqueues a continuation before answering; the continuation finishes the
// export, and one report is sent in all.
func TestPollBudgetContinuation(t *testing.T) {
	ctx := context.Background()
	queue := "projects/dsexport-tests/locations/us-central1/queues/dsexport-poll"
	fakeTasks := tasksfake.New(t)
	fakeTasks.AddQueue(queue)

	// The service's own URL is known only once it listens; the handler is set after.
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer srv.Close()
	dispatcher, err := tasks.New(ctx, tasks.Config{
		Queue: queue, Target: tasks.HTTP, URL: srv.URL,
		ServiceAccount: "tasks@dsexport-tests.iam.gserviceaccount.com", Endpoint: fakeTasks.Addr(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dispatcher.Close()
	peers := testrig.New(t, 10, func(c *poller.Config) {
		c.Dispatcher = dispatcher
		c.Budget = 3 * time.Minute // three polls a minute apart on the virtual clock
	})
	handler = server.New(server.Config{
		Poller: peers.Poller, Logger: peers.Logger,
		Defaults: poller.ExportRequest{Project: peers.Project, OutputURLPrefix: "gs://example-backups/daily"},
	})

	running := adminfake.Running("PROCESSING", 1, 10, 1, 10)
	peers.Admin.Script(running, running, running, adminfake.Successful(10, 10))
	resp, err := http.Get(srv.URL + "/cron/export")
	if err != nil {
		t.Fatal(err)
	}
	var started poller.Record
	json.NewDecoder(resp.Body).Decode(&struct{ Name *string }{&started.Name})
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusAccepted; got != want {
		t.Fatalf("GET /cron/export = %d; want %d", got, want)
	}

	// deliver plays Cloud Tasks: it sends the task's request to the service.
	deliver := func(i int) record {
		t.Helper()
		all := fakeTasks.Tasks()
		if len(all) <= i {
			t.Fatalf("queue holds %d tasks; want task #%d", len(all), i+1)
		}
		hr := all[i].GetHttpRequest()
		if got, want := hr.GetUrl(), srv.URL+"/tasks/poll"; got != want {
			t.Fatalf("task #%d URL = %q; want %q", i+1, got, want)
		}
		var body struct{ Name string }
		if err := json.Unmarshal(hr.GetBody(), &body); err != nil || body.Name != started.Name {
			t.Fatalf("task #%d body %s; want the operation %s", i+1, hr.GetBody(), started.Name)
		}
		resp, err := http.Post(hr.GetUrl(), hr.GetHeaders()["Content-Type"], strings.NewReader(string(hr.GetBody())))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got, want := resp.StatusCode, http.StatusOK; got != want {
			t.Fatalf("task #%d answered %d; want %d", i+1, got, want)
		}
		var rec record
		if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}

	first := deliver(0)
	if got, want := first.Polls, 3; got != want {
		t.Errorf("first slice made %d polls; want %d", got, want)
	}
	if first.Outcome != "" || len(peers.Slack.Messages()) != 0 {
		t.Fatalf("first slice ended the export: outcome %q, %d reports", first.Outcome, len(peers.Slack.Messages()))
	}
	if got, want := len(fakeTasks.Tasks()), 2; got != want {
		t.Fatalf("after the first slice the queue holds %d tasks; want %d (the continuation)", got, want)
	}
	all := fakeTasks.Tasks()
	if all[0].GetName() == all[1].GetName() {
		t.Errorf("the continuation has its predecessor's name %s", all[0].GetName())
	}
	if got, want := all[1].GetName(), queue+"/tasks/"+tasks.TaskID(poller.Handoff{Name: started.Name, Polls: 3}); got != want {
		t.Errorf("continuation name = %q; want %q (named after the poll count)", got, want)
	}

	second := deliver(1)
	if got, want := second.Outcome, string(poller.OutcomeSuccess); got != want {
		t.Errorf("continuation outcome = %q; want %q", got, want)
	}
	if got, want := second.Polls, 4; got != want {
		t.Errorf("polls in all = %d; want %d (the count carries over)", got, want)
	}
	if got, want := len(fakeTasks.Tasks()), 2; got != want {
		t.Errorf("queue holds %d tasks after the end; want %d", got, want)
	}
	if got := len(peers.Slack.Messages()); got != 1 {
		t.Errorf("Slack got %d reports; want 1", got)
	}
	// A late duplicate delivery (Cloud Tasks delivers at least once) changes nothing.
	deliver(1)
	if got := len(peers.Slack.Messages()); got != 1 {
		t.Errorf("Slack got %d reports after a duplicate delivery; want 1", got)
	}
}
