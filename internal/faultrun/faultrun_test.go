// Package faultrun drives many exports through the real service code, with
// faults injected everywhere, and counts the reports: every export must end
// in exactly one. Run it with
//
//	go test -count=1 -v -run TestFaultInjection ./internal/faultrun
//
// FAULTRUN_EXPORTS and FAULTRUN_SEED change the size and the draw.
package faultrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/tasks"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Main(m)) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestFaultInjection starts exports through POST /export and lets a Cloud
// Tasks stand-in deliver the poll tasks to the real server, while:
//   - the Admin API answers 503 or 429 to 20% of calls (exports and polls),
//   - Slack answers 500 or 429 to 20% of posts,
//   - 10% of poll deliveries are cut off mid-poll (the client goes away, as
//     when an instance dies), and are delivered again after a backoff,
//   - 20% of deliveries are duplicated (Cloud Tasks delivers at least once),
//   - 5% of operations get a lease from a poller that crashed without
//     releasing it, which only the sweep's resume gets past,
//
// and the sweep runs every 100ms, as cron runs it every 10 minutes. Then it
// counts Slack messages per export: none is lost, none is sent twice.
func TestFaultInjection(t *testing.T) {
	exports := envInt("FAULTRUN_EXPORTS", 200)
	seed := uint64(envInt("FAULTRUN_SEED", 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	st, project := testrig.Store(t)
	fakeAdmin := adminfake.New(t)
	fakeAdmin.InjectFaults(0.2, seed)
	slack := slackfake.New(t, testrig.SlackToken)
	slack.InjectFaults(0.2, seed+1)
	queue := "projects/" + project + "/locations/us-central1/queues/dsexport-poll"
	fakeTasks := tasksfake.New(t)
	fakeTasks.AddQueue(queue)
	var logs testrig.SyncBuffer
	logger := slogText(&logs)

	adminClient, err := admin.NewDatastore(ctx, fakeAdmin.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	slackClient, err := notifier.NewSlackBot(testrig.SlackToken, testrig.SlackChannel, time.UTC, notifier.WithAPIURL(slack.URL()))
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer srv.Close()
	dispatcher, err := tasks.New(ctx, tasks.Config{Queue: queue, Target: tasks.HTTP, URL: srv.URL,
		ServiceAccount: "tasks@" + project + ".iam.gserviceaccount.com", Endpoint: fakeTasks.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer dispatcher.Close()
	const leaseTTL = 400 * time.Millisecond
	p := poller.New(poller.Config{
		Admin: adminClient, Store: st, Notifier: slackClient, Logger: logger,
		Dispatcher: dispatcher, Budget: 40 * time.Millisecond,
		Interval: 5 * time.Millisecond, MaxPolls: 200, RequestTimeout: 4 * time.Second,
		LeaseTTL: leaseTTL, ClaimTTL: 5 * time.Second, StopGrace: 4 * time.Second,
		// The sweep runs every 100ms here, not every 10 minutes.
		SweepRound: 100 * time.Millisecond,
	})
	handler = server.New(server.Config{
		Poller: p, Logger: logger,
		Defaults: poller.ExportRequest{Project: project, OutputURLPrefix: "gs://example-backups/faults"},
	})

	rng := rand.New(rand.NewPCG(seed, seed+2))
	var rngMu sync.Mutex
	chance := func(p float64) bool {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.Float64() < p
	}

	// The queue: delivers every task until it answers 2xx, some twice at
	// once, some cut off mid-poll.
	var deliveries sync.WaitGroup
	var stats struct {
		sync.Mutex
		deliveries, cut, duplicates, retries int
	}
	deliver := func(body []byte) {
		defer deliveries.Done()
		for attempt := 0; ctx.Err() == nil; attempt++ {
			rctx, rcancel := context.WithCancel(ctx)
			if chance(0.10) {
				stats.Lock()
				stats.cut++
				stats.Unlock()
				time.AfterFunc(time.Duration(5+rand.IntN(20))*time.Millisecond, rcancel)
			}
			req, _ := http.NewRequestWithContext(rctx, http.MethodPost, srv.URL+"/tasks/poll", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			ok := err == nil && resp.StatusCode < 300
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			rcancel()
			stats.Lock()
			stats.deliveries++
			if !ok {
				stats.retries++
			}
			stats.Unlock()
			if ok {
				return
			}
			time.Sleep(time.Duration(20+10*min(attempt, 10)) * time.Millisecond)
		}
	}
	go func() {
		seen := 0
		for ctx.Err() == nil {
			all := fakeTasks.Tasks()
			for _, task := range all[seen:] {
				body := task.GetHttpRequest().GetBody()
				n := 1
				if chance(0.20) {
					n = 2
					stats.Lock()
					stats.duplicates++
					stats.Unlock()
				}
				for range n {
					deliveries.Add(1)
					go deliver(body)
				}
			}
			seen = len(all)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// The sweep, as cron runs it.
	go func() {
		for ctx.Err() == nil {
			if resp, err := http.Get(srv.URL + "/cron/sweep"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// The exports: each its own kind, so that every report names its export.
	started := time.Now()
	crashed := 0
	for i := range exports {
		switch i % 10 {
		case 0:
			fakeAdmin.Script(adminfake.Running("PROCESSING", 1, 2, 1, 2), adminfake.Failed(7, "lacks storage.objects.create"))
		case 1:
			fakeAdmin.Script(adminfake.Cancelled())
		default:
			steps := make([]adminfake.Step, 1+i%7)
			for j := range steps {
				steps[j] = adminfake.Running("PROCESSING", int64(j), 10, int64(j), 10)
			}
			fakeAdmin.Script(append(steps, adminfake.Successful(10, 100))...)
		}
		body := fmt.Sprintf(`{"kinds":["K%03d"]}`, i)
		resp, err := http.Post(srv.URL+"/export", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct{ Name string }
		json.NewDecoder(resp.Body).Decode(&rec)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("POST /export %s = %d; want 202, or 502 for an injected refusal", body, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusAccepted && chance(0.05) {
			// A poller that crashed holding the lease.
			if _, ok, err := st.AcquireLease(ctx, rec.Name, "crashed-instance", time.Now(), leaseTTL); err == nil && ok {
				crashed++
			}
		}
	}

	// Wait until nothing is pending, or give up.
	deadline := time.Now().Add(4 * time.Minute)
	for {
		pending, err := st.Pending(ctx)
		if err == nil && len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d operations still pending after the deadline", len(pending))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	deliveries.Wait()
	elapsed := time.Since(started)

	// Each export's report, by the kind that names the export.
	perExport := map[string][]string{}
	for _, m := range slack.Messages() {
		for _, a := range m.Attachments {
			for _, f := range a.Fields {
				if f.Title == "Kinds" {
					perExport[f.Value] = append(perExport[f.Value], a.Title)
				}
			}
		}
	}
	delivered, duplicates, lost, refused, wrong := 0, 0, 0, 0, 0
	for i := range exports {
		titles := perExport[fmt.Sprintf("K%03d", i)]
		if len(titles) == 0 {
			lost++
			continue
		}
		delivered++
		duplicates += len(titles) - 1
		// The report must say what the script made of the export, unless
		// the injected fault refused its start.
		want := "Datastore export succeeded"
		if i%10 < 2 {
			want = "Datastore export failed"
		}
		switch titles[0] {
		case want:
		case "Datastore export could not be started":
			refused++
		default:
			wrong++
			t.Errorf("export K%03d reported %q; want %q", i, titles[0], want)
		}
	}
	stats.Lock()
	fmt.Printf("faultrun: %d exports, %d reports delivered, %d duplicates, %d lost\n", exports, delivered, duplicates, lost)
	fmt.Printf("faultrun: %d started and followed to their end, %d refused at the start by an injected fault (reported as such), %d with a wrong outcome\n",
		exports-refused-lost, refused, wrong)
	fmt.Printf("faultrun: injected %d Admin API faults, %d Slack faults, %d cut-off deliveries, %d duplicate deliveries, %d crashed leases; %d deliveries (%d failed and retried); %s\n",
		fakeAdmin.Injected(), slack.Injected(), stats.cut, stats.duplicates, crashed, stats.deliveries, stats.retries, elapsed.Round(time.Second))
	stats.Unlock()
	if lost != 0 || duplicates != 0 {
		t.Errorf("%d lost, %d duplicate reports; want 0 and 0", lost, duplicates)
		t.Logf("logs:\n%s", tail(logs.String(), 20000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
