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
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/faults"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/store"
	"github.com/dsexport/dsexport/tasks"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

// maxLatency is the promise: a report within a minute of its export's end.
const maxLatency = 60 * time.Second

// A scenario is one fault-injection run: the exports, the faults, how the
// queue delivers, and whether a sweep runs.
type scenario struct {
	name string
	// exports is how many exports run at FAULTRUN_EXPORTS' default of 200;
	// FAULTRUN_EXPORTS scales it.
	exports int
	// export is the script of export i and the title its report must have
	// (unless an injected fault refused its start).
	export func(i int, env scriptEnv) ([]adminfake.Step, string)
	// startEvery spaces the starts, each made in a goroutine of its own;
	// zero makes them one after another.
	startEvery time.Duration

	// lockWindow is added to maxLatency where the README names a window:
	// a transaction cut off by a store outage keeps its locks under
	// pessimistic locking until the database expires it (60 s idle on
	// Firestore), and a step on that entity waits for it.
	lockWindow time.Duration

	// The poller's configuration; zero values are the poller's defaults.
	interval, requestTimeout, leaseTTL, claimTTL, stopGrace, budget, sweepRound time.Duration
	maxPolls                                                                    int

	// adminFaults and slackFaults are the rates of injected 503/429 and
	// 500/429 answers.
	adminFaults, slackFaults float64
	// cutDeliveries and duplicateDeliveries are the rates of poll
	// deliveries cut off mid-poll and delivered twice.
	cutDeliveries, duplicateDeliveries float64
	// crashedLeases is the rate of operations leased by a poller that
	// crashed, which only the sweep's resume gets past.
	crashedLeases float64
	// redeliver is the wait before a failed delivery is made again.
	redeliver func(attempt int) time.Duration
	// sweep runs GET /cron/sweep every 100ms, as cron runs it every 10
	// minutes; without it nothing but the service itself and the queue's
	// redeliveries moves an export on.
	sweep bool
	// storeFaults injects faults at the network between the store and its
	// emulator from the start of the run until ctx ends.
	storeFaults func(ctx context.Context, p *faults.Proxy, rng *rand.Rand)
	// wait is how long after the last start the run waits for the reports.
	wait time.Duration
}

// scriptEnv is what a scenario's scripts may draw on.
type scriptEnv struct {
	project string
	exports int
	rng     *rand.Rand
}

// taskRetryLimit is queue.yaml's task_retry_limit: a task that failed this
// many retries is dropped, and only a sweep finds its operation again.
const taskRetryLimit = 10

// quickRedelivery retries a delivery after 20ms, 30ms, … up to 120ms.
func quickRedelivery(attempt int) time.Duration {
	return time.Duration(20+10*min(attempt, 10)) * time.Millisecond
}

// queueRedelivery retries as queue.yaml has Cloud Tasks retry: 10s, 20s, 40s,
// 80s, then 80s longer each time.
func queueRedelivery(attempt int) time.Duration {
	if attempt <= 3 {
		return 10 * time.Second << attempt
	}
	return 80 * time.Second * time.Duration(attempt-2)
}

// exportResult is what one export's start answered and what became of it.
type exportResult struct {
	kind   string
	status int
	// reached tells whether the Admin API received the start.
	reached bool
	name    string
	want    string
	titles  []string
	// projects are the projects its reports name, in the same order.
	projects []string
	// first is when its first report reached Slack; ended when its
	// operation ended (adminfake.DoneAt), zero if it never did.
	first, ended time.Time
	// took is how long its start took to answer.
	took time.Duration
}

// run runs sc with the store on emulator target and checks that every
// export ended in exactly one report, the one its script called for, within
// maxLatency of its end.
func run(t *testing.T, target emulator, sc scenario) {
	seed := uint64(envInt("FAULTRUN_SEED", 1))
	exports := max(1, sc.exports*envInt("FAULTRUN_EXPORTS", 200)/200)
	label := target.name + "/" + sc.name
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The service's store talks to the emulator through the fault proxy;
	// the run's own reads go straight to it.
	host := target.host(t)
	project := emulatortest.Project(t)
	proxy, err := faults.NewProxy(host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	st := openStore(t, proxy.Addr(), project)
	direct := openStore(t, host, project)

	fakeAdmin := adminfake.New(t)
	fakeAdmin.InjectFaults(sc.adminFaults, seed)
	scripts := make(map[string][]adminfake.Step, exports)
	want := make([]string, exports)
	env := scriptEnv{project: project, exports: exports, rng: rand.New(rand.NewPCG(seed, seed+4))}
	for i := range exports {
		scripts[kindOf(i)], want[i] = sc.export(i, env)
	}
	fakeAdmin.ScriptEach(func(call adminfake.ExportCall) []adminfake.Step {
		if k := call.EntityFilter.Kinds; len(k) == 1 {
			return scripts[k[0]]
		}
		return nil
	})
	slack := slackfake.New(t, testrig.SlackToken)
	slack.InjectFaults(sc.slackFaults, seed+1)
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
	p := poller.New(poller.Config{
		Admin: adminClient, Store: st, Notifier: slackClient, Logger: logger,
		Dispatcher: dispatcher, Budget: sc.budget,
		Interval: sc.interval, MaxPolls: sc.maxPolls, RequestTimeout: sc.requestTimeout,
		LeaseTTL: sc.leaseTTL, ClaimTTL: sc.claimTTL, StopGrace: sc.stopGrace, SweepRound: sc.sweepRound,
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
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}

	// The queue: delivers every task until it answers 2xx or its retries
	// are spent, some twice at once, some cut off mid-poll.
	var deliveries sync.WaitGroup
	var stats struct {
		sync.Mutex
		deliveries, cut, duplicates, retries, dropped int
	}
	deliver := func(body []byte) {
		defer deliveries.Done()
		for attempt := 0; ctx.Err() == nil; attempt++ {
			if attempt > taskRetryLimit {
				stats.Lock()
				stats.dropped++
				stats.Unlock()
				return
			}
			rctx, rcancel := context.WithCancel(ctx)
			if chance(sc.cutDeliveries) {
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
			if ok || !sleep(sc.redeliver(attempt)) {
				return
			}
		}
	}
	go func() {
		seen := 0
		for ctx.Err() == nil {
			all := fakeTasks.Tasks()
			for _, task := range all[seen:] {
				body := task.GetHttpRequest().GetBody()
				n := 1
				if chance(sc.duplicateDeliveries) {
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
	if sc.sweep {
		go func() {
			for ctx.Err() == nil {
				if resp, err := http.Get(srv.URL + "/cron/sweep"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				sleep(100 * time.Millisecond)
			}
		}()
	}
	faultsCtx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	var faultsDone sync.WaitGroup
	if sc.storeFaults != nil {
		faultsDone.Add(1)
		go func() {
			defer faultsDone.Done()
			sc.storeFaults(faultsCtx, proxy, rand.New(rand.NewPCG(seed, seed+3)))
		}()
	}

	// The exports: each its own kind, so that every report names its export.
	started := time.Now()
	results := make([]exportResult, exports)
	crashed := 0
	var crashedMu sync.Mutex
	// A start is given up after Cloud Scheduler's default attempt
	// deadline, 3 minutes, as its caller would.
	startClient := &http.Client{Timeout: 3 * time.Minute}
	start := func(i int) {
		r := &results[i]
		r.kind, r.want = kindOf(i), want[i]
		if time.Since(started) > sc.wait {
			// The starts before took the whole wait: something hangs.
			return
		}
		body := fmt.Sprintf(`{"kinds":[%q]}`, r.kind)
		begun := time.Now()
		resp, err := startClient.Post(srv.URL+"/export", "application/json", strings.NewReader(body))
		r.took = time.Since(begun)
		if err != nil {
			t.Errorf("%s: POST /export %s: %v", label, body, err)
			return
		}
		var rec struct{ Name string }
		json.NewDecoder(resp.Body).Decode(&rec)
		resp.Body.Close()
		r.status = resp.StatusCode
		if resp.StatusCode == http.StatusAccepted && chance(sc.crashedLeases) {
			// A poller that crashed holding the lease.
			if _, ok, err := direct.AcquireLease(ctx, rec.Name, "crashed-instance", time.Now(), sc.leaseTTL); err == nil && ok {
				crashedMu.Lock()
				crashed++
				crashedMu.Unlock()
			}
		}
	}
	var starts sync.WaitGroup
	for i := range exports {
		if sc.startEvery == 0 {
			start(i)
			continue
		}
		time.Sleep(time.Until(started.Add(time.Duration(i) * sc.startEvery)))
		starts.Add(1)
		go func() { defer starts.Done(); start(i) }()
	}
	starts.Wait()
	for _, r := range results {
		switch r.status {
		case http.StatusAccepted, http.StatusBadGateway:
		case 0:
			t.Logf("%s: POST /export of %s not answered", label, r.kind)
		default:
			t.Logf("%s: POST /export of %s answered %d", label, r.kind, r.status)
		}
	}

	// Wait until every export that started is reported and nothing is
	// pending, or give up.
	deadline := time.Now().Add(sc.wait)
	for {
		collect(results, fakeAdmin, slack)
		pending, err := direct.Pending(ctx)
		waiting := 0
		for _, r := range results {
			if r.expected() && len(r.titles) == 0 {
				waiting++
			}
		}
		if err == nil && len(pending) == 0 && waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %d operations still pending and %d exports unreported %v after the last start", label, len(pending), waiting, sc.wait)
			for _, rec := range pending {
				t.Logf("%s: pending: %s kinds %v, outcome %q, polls %d, report claimed %v", label, rec.Name, rec.Kinds, rec.Outcome, rec.Polls, rec.ReportClaimed)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A little longer, for a late second report.
	time.Sleep(2 * time.Second)
	// An export whose start was refused has no operation at the Admin
	// API: its record, if still pending, names it.
	if pending, err := direct.Pending(ctx); err == nil {
		for _, rec := range pending {
			for i := range results {
				if r := &results[i]; r.name == "" && len(rec.Kinds) == 1 && rec.Kinds[0] == r.kind {
					r.name = rec.Name
				}
			}
		}
	}
	stopFaults()
	faultsDone.Wait()
	cancel()
	// Polls still at work when the run ends (a store call that hangs) are
	// ended with the store's connections, so that the server can close.
	proxy.Close()
	st.Close()
	deliveries.Wait()
	elapsed := time.Since(started)
	collect(results, fakeAdmin, slack)

	// Each export's reports, against what its script called for.
	var delivered, duplicates, lost, refused, wrong, notStarted int
	var latencies []time.Duration
	var bad []exportResult
	var slowestStart time.Duration
	for _, r := range results {
		slowestStart = max(slowestStart, r.took)
		if len(r.titles) == 0 {
			if r.expected() {
				lost++
				bad = append(bad, r)
			} else {
				notStarted++
			}
			continue
		}
		delivered++
		if len(r.titles) > 1 {
			duplicates += len(r.titles) - 1
			bad = append(bad, r)
		}
		if got := r.projects[0]; got != project {
			wrong++
			t.Errorf("%s: export %s reported an operation of project %q; want %q", label, r.kind, got, project)
			bad = append(bad, r)
			continue
		}
		switch r.titles[0] {
		case r.want:
		case "Datastore export could not be started":
			refused++
			continue
		default:
			wrong++
			t.Errorf("%s: export %s reported %q; want %q", label, r.kind, r.titles[0], r.want)
			bad = append(bad, r)
		}
		if !r.ended.IsZero() {
			latencies = append(latencies, max(0, r.first.Sub(r.ended)))
		}
	}
	slices.Sort(latencies)
	var p50, worst time.Duration
	if n := len(latencies); n > 0 {
		p50, worst = latencies[n/2], latencies[n-1]
	}
	ps := proxy.Stats()
	stats.Lock()
	fmt.Printf("faultrun %s: %d exports, %d reports delivered, %d duplicates, %d lost, %d wrong outcomes\n",
		label, exports, delivered, duplicates, lost, wrong)
	fmt.Printf("faultrun %s: end to report p50 %s, max %s over the %d exports that ended; %d refused at the start by an injected fault (reported as such), %d not started (the start answered an error before the Admin API was asked); the slowest start answered after %s\n",
		label, p50.Round(10*time.Millisecond), worst.Round(10*time.Millisecond), len(latencies), refused, notStarted, slowestStart.Round(10*time.Millisecond))
	fmt.Printf("faultrun %s: injected %d Admin API faults, %d Slack faults, %d cut-off deliveries, %d duplicate deliveries, %d crashed leases, %d store answer holds (%d of them holding answers back), %d store outages (%d connections reset); %d deliveries (%d failed, %d tasks dropped after %d retries); %s\n",
		label, fakeAdmin.Injected(), slack.Injected(), stats.cut, stats.duplicates, crashed, ps.Holds, ps.Held, ps.Cuts, ps.Reset,
		stats.deliveries, stats.retries, stats.dropped, taskRetryLimit, elapsed.Round(time.Second))
	stats.Unlock()

	if lost != 0 || duplicates != 0 {
		t.Errorf("%s: %d lost, %d duplicate reports; want 0 and 0", label, lost, duplicates)
	}
	if bound := maxLatency + sc.lockWindow; worst > bound {
		t.Errorf("%s: a report came %s after its export's end; want within %s", label, worst.Round(time.Second), bound)
		for _, r := range results {
			if len(r.titles) > 0 && !r.ended.IsZero() && r.first.Sub(r.ended) > maxLatency+sc.lockWindow {
				bad = append(bad, r)
			}
		}
	}
	if t.Failed() {
		explain(t, label, logs.String(), bad)
		if !answers(host) {
			t.Logf("%s: the emulator at %s no longer answers: it stopped during the run, and the failures above may be its", label, host)
		}
	}
	if dir := os.Getenv("FAULTRUN_LOGS"); dir != "" {
		path := filepath.Join(dir, strings.ReplaceAll(label, "/", "-")+".log")
		if err := os.WriteFile(path, []byte(logs.String()), 0o644); err != nil {
			t.Error(err)
		} else {
			t.Logf("%s: logs in %s", label, path)
		}
	}
}

// expected tells whether the export must end in a report: its start was
// answered as started or refused, or reached the Admin API whatever it
// answered.
func (r exportResult) expected() bool {
	return r.status == http.StatusAccepted || r.status == http.StatusBadGateway || r.reached
}

// collect fills in each export's operation, its end and its reports.
func collect(results []exportResult, fakeAdmin *adminfake.Server, slack *slackfake.Server) {
	byKind := make(map[string]int, len(results))
	for i := range results {
		byKind[kindOf(i)] = i
		results[i].titles, results[i].projects, results[i].first = nil, nil, time.Time{}
	}
	for _, name := range fakeAdmin.Names() {
		call, _ := fakeAdmin.Call(name)
		if k := call.EntityFilter.Kinds; len(k) == 1 {
			if i, ok := byKind[k[0]]; ok {
				results[i].reached, results[i].name = true, name
				results[i].ended = fakeAdmin.DoneAt(name)
			}
		}
	}
	for _, m := range slack.Messages() {
		for _, a := range m.Attachments {
			fields := map[string]string{}
			for _, f := range a.Fields {
				fields[f.Title] = f.Value
			}
			if i, ok := byKind[fields["Kinds"]]; ok {
				r := &results[i]
				r.titles = append(r.titles, a.Title)
				r.projects = append(r.projects, fields["Project"])
				if r.first.IsZero() {
					r.first = m.Received
				}
			}
		}
	}
}

// explain logs, for the exports that went wrong, the log lines that name
// their operation, and the tail of the logs.
func explain(t *testing.T, label, logs string, bad []exportResult) {
	sort.Slice(bad, func(i, j int) bool { return bad[i].kind < bad[j].kind })
	bad = slices.CompactFunc(bad, func(a, b exportResult) bool { return a.kind == b.kind })
	lines := strings.Split(logs, "\n")
	for i, r := range bad {
		if i == 6 {
			t.Logf("%s: and %d more exports", label, len(bad)-i)
			break
		}
		var mine []string
		for _, l := range lines {
			if r.name != "" && strings.Contains(l, r.name) {
				mine = append(mine, clip(l, 600))
			}
		}
		if len(mine) > 40 {
			mine = append(mine[:20], append([]string{"…"}, mine[len(mine)-20:]...)...)
		}
		t.Logf("%s: export %s (%s): start answered %d, reports %q, ended %v, first report %v; its log lines:\n%s",
			label, r.kind, r.name, r.status, r.titles, r.ended.Format(time.StampMilli), r.first.Format(time.StampMilli), strings.Join(mine, "\n"))
	}
	t.Logf("%s: last logs:\n%s", label, clip(tail(logs, 8000), 8000))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func kindOf(i int) string { return fmt.Sprintf("K%03d", i) }

// answers tells whether the emulator at host still answers its health check.
func answers(host string) bool {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + host + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// openStore opens the store of project on the emulator at host.
func openStore(t *testing.T, host, project string) *store.Store {
	t.Helper()
	st, err := store.New(context.Background(), project, option.WithEndpoint(host), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
