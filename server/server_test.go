package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/cloudlog"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/store/memstore"
	"github.com/dsexport/dsexport/store/storetest"
)

func TestMain(m *testing.M) {
	os.Exit(emulatortest.Main(m))
}

const maxPolls = 5

// rig is the server over real HTTP with real peers: the poller and its Admin
// client against adminfake, the store on the Datastore emulator, Slack
// through slackfake, and the inline dispatcher.
type rig struct {
	url      string
	admin    *adminfake.Server
	slack    *slackfake.Server
	store    storetest.Store
	inline   *poller.Inline
	project  string
	defaults poller.ExportRequest
}

func newRig(t *testing.T, configure ...func(*poller.Config)) *rig {
	t.Helper()
	// The inline polls outlive the request that started them; the cleanup
	// ends them before the store and the fakes go away.
	ctx, cancel := context.WithCancel(context.Background())
	inline := poller.NewInline(ctx, nil)
	withInline := func(c *poller.Config) { c.Dispatcher = inline }
	peers := testrig.OnEmulator(t, maxPolls, append([]func(*poller.Config){withInline}, configure...)...)
	r := &rig{inline: inline, admin: peers.Admin, slack: peers.Slack, store: peers.Store, project: peers.Project}
	r.defaults = poller.ExportRequest{
		Project:         r.project,
		OutputURLPrefix: "gs://example-backups/daily",
		Kinds:           []string{"User", "Order"},
		Namespaces:      []string{"", "tenant-a"},
	}
	srv := httptest.NewServer(server.New(server.Config{
		Poller: peers.Poller, Logger: peers.Logger, Defaults: r.defaults,
	}))
	r.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		cancel()
		r.inline.Wait()
	})
	return r
}

// do sends one request and returns the status and the body.
func (r *rig) do(t *testing.T, method, path, contentType string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// postJSON posts body to path as application/json.
func (r *rig) postJSON(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	return r.do(t, http.MethodPost, path, "application/json", strings.NewReader(body))
}

// postForm posts form to path as application/x-www-form-urlencoded.
func (r *rig) postForm(t *testing.T, path string, form url.Values) (int, []byte) {
	t.Helper()
	return r.do(t, http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// record is the JSON of a poller.Record as the server answers it.
type record struct {
	Name       string   `json:"name"`
	Project    string   `json:"project"`
	Trigger    string   `json:"trigger"`
	State      string   `json:"state"`
	Done       bool     `json:"done"`
	Polls      int      `json:"polls"`
	Outcome    string   `json:"outcome"`
	Reported   bool     `json:"reported"`
	Kinds      []string `json:"kinds"`
	Namespaces []string `json:"namespaces"`
	OutputURL  string   `json:"outputUrl"`
}

func decodeRecord(t *testing.T, body []byte) record {
	t.Helper()
	var rec record
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatalf("response body %q is not a record: %v", body, err)
	}
	if rec.Name == "" {
		t.Fatalf("response body %q has no name", body)
	}
	return rec
}

// errorMessage returns the "error" of a JSON error body, failing if the body
// is anything else.
func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var e map[string]string
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not a JSON object of strings: %v", body, err)
	}
	msg, ok := e["error"]
	if !ok || msg == "" {
		t.Fatalf("error body %q has no \"error\" message", body)
	}
	return msg
}

// onlyMessage returns the one Slack message, failing unless there is exactly one.
func (r *rig) onlyMessage(t *testing.T) slackfake.Message { return r.slack.Only(t) }

// onlyExport returns the one export call the Admin API got.
func (r *rig) onlyExport(t *testing.T) adminfake.ExportCall {
	t.Helper()
	calls := r.admin.Exports()
	if len(calls) != 1 {
		t.Fatalf("Admin API got %d export calls; want 1: %+v", len(calls), calls)
	}
	return calls[0]
}

// records lists everything the store holds for the rig's project.
func (r *rig) records(t *testing.T) []poller.Record {
	t.Helper()
	recs, err := r.store.List(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// assertUntouched checks that a refused request reached none of the peers.
func (r *rig) assertUntouched(t *testing.T) {
	t.Helper()
	r.inline.Wait()
	if calls := r.admin.Exports(); len(calls) != 0 {
		t.Errorf("Admin API got export calls %+v; want none", calls)
	}
	if recs := r.records(t); len(recs) != 0 {
		t.Errorf("store holds %+v; want nothing", recs)
	}
	if msgs := r.slack.Messages(); len(msgs) != 0 {
		t.Errorf("Slack got %+v; want no message", msgs)
	}
}

func TestRoutes(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/healthz", http.StatusOK, ""},
		{http.MethodGet, "/_ah/start", http.StatusNoContent, ""},
		{http.MethodGet, "/_ah/stop", http.StatusNoContent, ""},
		{http.MethodGet, "/export", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, "/export", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/tasks/poll", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/cron/export", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/nowhere", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, r.url+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("%s %s = %d %q; want %d", tt.method, tt.path, got, body, want)
			}
			if got, want := resp.Header.Get("Allow"), tt.allow; tt.allow != "" && got != want {
				t.Fatalf("%s %s: Allow = %q; want %q", tt.method, tt.path, got, want)
			}
			if tt.path == "/healthz" {
				if got, want := string(body), "ok\n"; got != want {
					t.Fatalf("GET /healthz body = %q; want %q", got, want)
				}
			}
		})
	}
	// None of the routes above may start anything.
	r.assertUntouched(t)
}

func TestCronExport(t *testing.T) {
	r := newRig(t)
	r.admin.Script(
		adminfake.Running("PROCESSING", 100, 1000, 1000, 10000),
		adminfake.Running("FINALIZING", 1000, 1000, 10000, 10000),
		adminfake.Successful(1000, 10000),
	)
	const steps = 3

	status, body := r.do(t, http.MethodGet, "/cron/export", "", nil)
	if got, want := status, http.StatusAccepted; got != want {
		t.Fatalf("GET /cron/export = %d %s; want %d", got, body, want)
	}
	started := decodeRecord(t, body)
	if got, want := started.State, string(poller.StateInitializing); got != want {
		t.Errorf("started state = %q; want %q", got, want)
	}
	if got, want := started.Trigger, string(poller.TriggerCron); got != want {
		t.Errorf("started trigger = %q; want %q", got, want)
	}
	if got, want := started.Outcome, ""; got != want {
		t.Errorf("started outcome = %q; want %q (still running)", got, want)
	}
	if got, want := r.admin.Names(), []string{started.Name}; !reflect.DeepEqual(got, want) {
		t.Errorf("Admin API operations = %q; want %q (the name answered)", got, want)
	}

	call := r.onlyExport(t)
	if got, want := call.Project, r.project; got != want {
		t.Errorf("export project = %q; want %q", got, want)
	}
	if got, want := call.Labels, map[string]string{"trigger": "cron"}; !reflect.DeepEqual(got, want) {
		t.Errorf("export labels = %v; want %v", got, want)
	}
	if got, want := call.OutputURLPrefix, r.defaults.OutputURLPrefix; got != want {
		t.Errorf("export outputUrlPrefix = %q; want %q", got, want)
	}
	if got, want := call.EntityFilter.Kinds, r.defaults.Kinds; !reflect.DeepEqual(got, want) {
		t.Errorf("export kinds = %q; want %q", got, want)
	}
	if got, want := call.EntityFilter.NamespaceIds, r.defaults.Namespaces; !reflect.DeepEqual(got, want) {
		t.Errorf("export namespaceIds = %q; want %q", got, want)
	}

	r.inline.Wait()
	ctx := context.Background()
	rec, err := r.store.Get(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Outcome, poller.OutcomeSuccess; got != want {
		t.Errorf("stored outcome = %q; want %q", got, want)
	}
	if got, want := rec.Polls, steps; got != want {
		t.Errorf("stored polls = %d; want %d", got, want)
	}
	if got, want := rec.Reported(), true; got != want {
		t.Errorf("stored Reported() = %v; want %v", got, want)
	}
	if got, want := rec.Trigger, poller.TriggerCron; got != want {
		t.Errorf("stored trigger = %q; want %q", got, want)
	}
	if got, want := r.admin.Gets(started.Name), steps; got != want {
		t.Errorf("Admin API GETs of %s = %d; want %d", started.Name, got, want)
	}
	snaps, err := r.store.Snapshots(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	var polls []int
	var states []poller.State
	for _, s := range snaps {
		polls = append(polls, s.Poll)
		states = append(states, s.State)
		// The poll loop waits one interval of the virtual clock before each GET.
		if got, want := s.Time.Sub(snaps[0].Time), time.Duration(s.Poll)*time.Minute; got != want {
			t.Errorf("snapshot %d taken %v after the start; want %v", s.Poll, got, want)
		}
	}
	if got, want := polls, []int{0, 1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot polls = %v; want %v", got, want)
	}
	wantStates := []poller.State{poller.StateInitializing, poller.StateProcessing, poller.StateFinalizing, poller.StateSuccessful}
	if got, want := states, wantStates; !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot states = %v; want %v", got, want)
	}

	msg := r.onlyMessage(t)
	if got, want := msg.Attachments[0].Title, "Datastore export succeeded"; got != want {
		t.Errorf("Slack title = %q; want %q", got, want)
	}
	if got, want := msg.Channel, testrig.SlackChannel; got != want {
		t.Errorf("Slack channel = %q; want %q", got, want)
	}
	if got, want := msg.Attachments[0].Text, "gcloud datastore import "+rec.OutputURL; !strings.Contains(got, want) {
		t.Errorf("Slack text = %q; want it to contain %q", got, want)
	}
}

func TestManualExport(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		prefix     string
		kinds      []string
		namespaces []string
	}{
		{
			name:       "overrides",
			body:       `{"outputUrlPrefix":"gs://example-backups/manual","kinds":["Invoice"],"namespaces":["tenant-b"]}`,
			prefix:     "gs://example-backups/manual",
			kinds:      []string{"Invoice"},
			namespaces: []string{"tenant-b"},
		},
		{
			name:       "kinds only",
			body:       `{"kinds":["Invoice","Payment"]}`,
			prefix:     "gs://example-backups/daily",
			kinds:      []string{"Invoice", "Payment"},
			namespaces: []string{"", "tenant-a"},
		},
		{
			name:       "empty body",
			body:       ``,
			prefix:     "gs://example-backups/daily",
			kinds:      []string{"User", "Order"},
			namespaces: []string{"", "tenant-a"},
		},
		{
			name:       "empty object",
			body:       `{}`,
			prefix:     "gs://example-backups/daily",
			kinds:      []string{"User", "Order"},
			namespaces: []string{"", "tenant-a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			status, body := r.postJSON(t, "/export", tt.body)
			if got, want := status, http.StatusAccepted; got != want {
				t.Fatalf("POST /export %s = %d %s; want %d", tt.body, got, body, want)
			}
			started := decodeRecord(t, body)
			if got, want := started.Trigger, string(poller.TriggerManual); got != want {
				t.Errorf("started trigger = %q; want %q", got, want)
			}
			call := r.onlyExport(t)
			if got, want := call.Labels["trigger"], "manual"; got != want {
				t.Errorf("export label trigger = %q; want %q", got, want)
			}
			if got, want := call.OutputURLPrefix, tt.prefix; got != want {
				t.Errorf("export outputUrlPrefix = %q; want %q", got, want)
			}
			if got, want := call.EntityFilter.Kinds, tt.kinds; !reflect.DeepEqual(got, want) {
				t.Errorf("export kinds = %q; want %q", got, want)
			}
			if got, want := call.EntityFilter.NamespaceIds, tt.namespaces; !reflect.DeepEqual(got, want) {
				t.Errorf("export namespaceIds = %q; want %q", got, want)
			}
			r.inline.Wait()
			rec, err := r.store.Get(context.Background(), started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := rec.Outcome, poller.OutcomeSuccess; got != want {
				t.Errorf("stored outcome = %q; want %q", got, want)
			}
			if got, want := rec.OutputURLPrefix, tt.prefix; got != want {
				t.Errorf("stored outputUrlPrefix = %q; want %q", got, want)
			}
			if got, want := r.onlyMessage(t).Attachments[0].Title, "Datastore export succeeded"; got != want {
				t.Errorf("Slack title = %q; want %q", got, want)
			}
		})
	}
}

// combinations is a filter of kinds × namespaces combinations.
func combinations(kinds, namespaces int) string {
	var ks, ns []string
	for i := range kinds {
		ks = append(ks, fmt.Sprintf("%q", fmt.Sprintf("Kind%d", i)))
	}
	for i := range namespaces {
		ns = append(ns, fmt.Sprintf("%q", fmt.Sprintf("ns%d", i)))
	}
	return `{"kinds":[` + strings.Join(ks, ",") + `],"namespaces":[` + strings.Join(ns, ",") + `]}`
}

func TestExportBadInput(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		// want are the parts the error message must contain: the field at fault.
		want []string
	}{
		{"prefix not gs", `{"outputUrlPrefix":"s3://x"}`, http.StatusBadRequest, []string{"outputUrlPrefix", "gs://"}},
		{"prefix in another bucket", `{"outputUrlPrefix":"gs://someone-elses-bucket/copy"}`, http.StatusBadRequest, []string{"outputUrlPrefix", "gs://example-backups"}},
		{"invalid bucket", `{"outputUrlPrefix":"gs://UPPER"}`, http.StatusBadRequest, []string{"outputUrlPrefix", "UPPER"}},
		{"empty prefix", `{"outputUrlPrefix":""}`, http.StatusBadRequest, []string{"outputUrlPrefix"}},
		{"reserved kind", `{"kinds":["__Stat_Total__"]}`, http.StatusBadRequest, []string{"kinds", "__Stat_Total__"}},
		{"empty kind", `{"kinds":[""]}`, http.StatusBadRequest, []string{"kinds"}},
		{"reserved namespace", `{"namespaces":["__internal__"]}`, http.StatusBadRequest, []string{"namespaces", "__internal__"}},
		{"kinds a string", `{"kinds":"User"}`, http.StatusBadRequest, []string{"kinds", "array"}},
		{"prefix a number", `{"outputUrlPrefix":42}`, http.StatusBadRequest, []string{"outputUrlPrefix", "string"}},
		{"malformed JSON", `{"kinds":["User"`, http.StatusBadRequest, []string{"malformed JSON"}},
		{"not JSON", `kinds=User`, http.StatusBadRequest, []string{"malformed JSON"}},
		{"unknown field", `{"outputUrlPrefx":"gs://b/x"}`, http.StatusBadRequest, []string{"outputUrlPrefx"}},
		{"second object after the object", `{"kinds":["User"]} {"kinds":["Order"]}`, http.StatusBadRequest, []string{"data after the object"}},
		{"text after the object", `{"kinds":["User"]} x`, http.StatusBadRequest, []string{"after the object"}},
		// Regression: decodeJSON's dec.More() is false before '}' and ']', so this passes as valid.
		{"closing brace after the object", `{"kinds":["User"]}}`, http.StatusBadRequest, []string{"after the object"}},
		{"11 kinds × 10 namespaces", combinations(11, 10), http.StatusBadRequest, []string{"kinds × namespaces", "110"}},
		{"body over 64 KiB", `{"kinds":["` + strings.Repeat("K", 64<<10) + `"]}`, http.StatusRequestEntityTooLarge, []string{"65536 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			status, body := r.postJSON(t, "/export", tt.body)
			if got, want := status, tt.status; got != want {
				t.Fatalf("POST /export = %d %s; want %d", got, body, want)
			}
			msg := errorMessage(t, body)
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			r.assertUntouched(t)
		})
	}
}

func TestExportRefused(t *testing.T) {
	const apiMessage = "The caller does not have permission"
	for _, tt := range []struct {
		method, path, body string
		trigger            string
	}{
		{http.MethodGet, "/cron/export", "", "cron"},
		{http.MethodPost, "/export", `{"kinds":["Invoice"]}`, "manual"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := newRig(t)
			r.admin.RefuseExports(http.StatusForbidden, apiMessage)
			status, body := r.do(t, tt.method, tt.path, "application/json", strings.NewReader(tt.body))
			if got, want := status, http.StatusBadGateway; got != want {
				t.Fatalf("%s %s = %d %s; want %d", tt.method, tt.path, got, body, want)
			}
			if msg := errorMessage(t, body); !strings.Contains(msg, apiMessage) {
				t.Errorf("error %q does not contain the API's message %q", msg, apiMessage)
			}
			if got, want := r.onlyExport(t).Labels["trigger"], tt.trigger; got != want {
				t.Errorf("refused export label trigger = %q; want %q", got, want)
			}

			msg := r.onlyMessage(t)
			att := msg.Attachments[0]
			if got, want := att.Title, "Datastore export could not be started"; got != want {
				t.Errorf("Slack title = %q; want %q", got, want)
			}
			if !strings.Contains(att.Text, apiMessage) {
				t.Errorf("Slack text %q does not contain the API's message %q", att.Text, apiMessage)
			}

			// Nothing was dispatched: no operation to poll.
			r.inline.Wait()
			if names := r.admin.Names(); len(names) != 0 {
				t.Errorf("Admin API operations = %q; want none", names)
			}
			// The refusal itself is recorded, reported, so a failed send is retried.
			if recs := r.records(t); len(recs) != 1 || !recs[0].Refused || !recs[0].Reported() {
				t.Errorf("store holds %+v; want the reported refusal only", recs)
			}
			if got, want := len(r.slack.Messages()), 1; got != want {
				t.Errorf("Slack got %d messages after the wait; want %d", got, want)
			}
		})
	}
}

func TestPollTask(t *testing.T) {
	running := adminfake.Running("PROCESSING", 500, 1000, 5000, 10000)
	tests := []struct {
		name     string
		json     bool
		steps    []adminfake.Step
		outcome  poller.Outcome
		polls    int
		title    string
		inReport string
	}{
		// An operation dsexport did not start is adopted by a first read,
		// its poll-0 snapshot; polls count the reads after it.
		{"form, success", false, []adminfake.Step{running, running, adminfake.Successful(1000, 10000)},
			poller.OutcomeSuccess, 2, "Datastore export succeeded", "gcloud datastore import gs://fake-bucket/exports/"},
		{"JSON, success", true, []adminfake.Step{running, adminfake.Successful(1000, 10000)},
			poller.OutcomeSuccess, 1, "Datastore export succeeded", "gcloud datastore import gs://fake-bucket/exports/"},
		{"JSON, failure", true, []adminfake.Step{running, adminfake.Failed(7, "lacks storage.objects.create")},
			poller.OutcomeFailure, 1, "Datastore export failed", "lacks storage.objects.create"},
		{"form, gone while polled", false, []adminfake.Step{running, adminfake.HTTPError(http.StatusNotFound, "")},
			poller.OutcomeUnexpected, 1, "Datastore export could no longer be read", "Error 404"},
		{"JSON, still running", true, []adminfake.Step{running},
			poller.OutcomeTimeout, maxPolls, fmt.Sprintf("Datastore export still running after %d polls", maxPolls), "gcloud datastore operations describe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			name := r.admin.AddOperation(r.project, tt.steps...)
			var status int
			var body []byte
			if tt.json {
				b, _ := json.Marshal(map[string]string{"name": name})
				status, body = r.postJSON(t, "/tasks/poll", string(b))
			} else {
				status, body = r.postForm(t, "/tasks/poll", url.Values{"name": {name}})
			}
			if got, want := status, http.StatusOK; got != want {
				t.Fatalf("POST /tasks/poll = %d %s; want %d", got, body, want)
			}
			rec := decodeRecord(t, body)
			if got, want := rec.Name, name; got != want {
				t.Errorf("record name = %q; want %q", got, want)
			}
			if got, want := rec.Outcome, string(tt.outcome); got != want {
				t.Errorf("record outcome = %q; want %q", got, want)
			}
			if got, want := rec.Polls, tt.polls; got != want {
				t.Errorf("record polls = %d; want %d", got, want)
			}
			if got, want := rec.Reported, true; got != want {
				t.Errorf("record reported = %v; want %v", got, want)
			}
			if got, want := r.admin.Gets(name), tt.polls+1; got != want {
				t.Errorf("Admin API GETs = %d; want %d", got, want)
			}
			stored, err := r.store.Get(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := stored.Outcome, tt.outcome; got != want {
				t.Errorf("stored outcome = %q; want %q", got, want)
			}
			att := r.onlyMessage(t).Attachments[0]
			if got, want := att.Title, tt.title; got != want {
				t.Errorf("Slack title = %q; want %q", got, want)
			}
			if !strings.Contains(att.Text, tt.inReport) {
				t.Errorf("Slack text %q does not contain %q", att.Text, tt.inReport)
			}
			if calls := r.admin.Exports(); len(calls) != 0 {
				t.Errorf("Admin API got export calls %+v; want none", calls)
			}
		})
	}
}

// TestPollTaskMultipart sends the name as multipart/form-data, which the
// handler lists as a form type it reads.
func TestPollTaskMultipart(t *testing.T) {
	r := newRig(t)
	name := r.admin.AddOperation(r.project)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("name", name); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	status, body := r.do(t, http.MethodPost, "/tasks/poll", mw.FormDataContentType(), &buf)
	// Regression: r.ParseForm does not read multipart bodies, so the name is never seen.
	if got, want := status, http.StatusOK; got != want {
		t.Fatalf("POST /tasks/poll (multipart) = %d %s; want %d", got, body, want)
	}
	if got, want := decodeRecord(t, body).Outcome, string(poller.OutcomeSuccess); got != want {
		t.Fatalf("record outcome = %q; want %q", got, want)
	}
}

func TestPollTaskBadName(t *testing.T) {
	// evil stands for another host a name could try to send the GET to.
	var evilHits sync.Map
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		evilHits.Store(req.URL.String(), true)
		http.NotFound(w, req)
	}))
	t.Cleanup(evil.Close)

	// The names are built around an operation the fake knows, so that a GET
	// that got through in any form would be counted by Gets.
	type input struct {
		json bool
		body func(op string) string
	}
	form := func(name func(op string) string) input {
		return input{body: func(op string) string { return url.Values{"name": {name(op)}}.Encode() }}
	}
	jsonName := func(name func(op string) string) input {
		return input{json: true, body: func(op string) string {
			b, _ := json.Marshal(map[string]string{"name": name(op)})
			return string(b)
		}}
	}
	project := func(op string) string { p, _ := poller.ParseName(op); return p }
	id := func(op string) string { return op[strings.LastIndex(op, "/")+1:] }

	tests := []struct {
		name string
		in   input
		want string
	}{
		{"form without name", input{body: func(string) string { return "" }}, `"name" is required`},
		{"form with empty name", form(func(string) string { return "" }), `"name" is required`},
		{"JSON without name", input{json: true, body: func(string) string { return `{}` }}, `"name" is required`},
		{"empty JSON body", input{json: true, body: func(string) string { return `` }}, `"name" is required`},
		{"JSON name a number", input{json: true, body: func(string) string { return `{"name":5}` }}, `"name"`},
		{"JSON unknown field", input{json: true, body: func(op string) string { return `{"operation":"` + op + `"}` }}, `"operation"`},
		{"traversal to export", jsonName(func(op string) string {
			return "projects/" + project(op) + "/operations/x/../../v1/projects/" + project(op) + ":export"
		}), `"name"`},
		{"traversal back to the operation", form(func(op string) string {
			return "projects/" + project(op) + "/operations/x/../" + id(op)
		}), `"name"`},
		{"dot segment id", jsonName(func(op string) string { return "projects/" + project(op) + "/operations/.." }), `"name"`},
		{"another host", jsonName(func(string) string { return "https://evil.example/x" }), `"name"`},
		{"another live host", form(func(op string) string { return evil.URL + "/v1/" + op }), `"name"`},
		{"protocol-relative host", jsonName(func(op string) string { return "//" + strings.TrimPrefix(evil.URL, "http://") + "/v1/" + op }), `"name"`},
		{"query", form(func(op string) string { return op + "?alt=json" }), `"name"`},
		{"fragment", jsonName(func(op string) string { return op + "#x" }), `"name"`},
		{"encoded slash", jsonName(func(op string) string { return "projects/" + project(op) + "/operations/x%2F..%2F" + id(op) }), `"name"`},
		{"trailing newline", form(func(op string) string { return op + "\n" }), `"name"`},
		{"leading space", jsonName(func(op string) string { return " " + op }), `"name"`},
		{"bare id", form(id), `"name"`},
		{"upper-case project", jsonName(func(op string) string { return strings.Replace(op, "projects/test-", "projects/Test-", 1) }), `"name"`},
		{"another project's operation", form(func(op string) string { return "projects/other-project/operations/" + id(op) }), "is not an operation of a configured database: other-project is not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			op := r.admin.AddOperation(r.project)
			contentType := "application/x-www-form-urlencoded"
			if tt.in.json {
				contentType = "application/json"
			}
			body := tt.in.body(op)
			status, resp := r.do(t, http.MethodPost, "/tasks/poll", contentType, strings.NewReader(body))
			if got, want := status, http.StatusBadRequest; got != want {
				t.Fatalf("POST /tasks/poll %q = %d %s; want %d", body, got, resp, want)
			}
			if msg := errorMessage(t, resp); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if got, want := r.admin.Gets(op), 0; got != want {
				t.Errorf("Admin API GETs of %s = %d; want %d", op, got, want)
			}
			if got, want := r.admin.Names(), []string{op}; !reflect.DeepEqual(got, want) {
				t.Errorf("Admin API operations = %q; want %q", got, want)
			}
			r.assertUntouched(t)
		})
	}
	evilHits.Range(func(k, _ any) bool {
		t.Errorf("another host got GET %v", k)
		return true
	})
}

// TestPollTaskOversizedBody checks that the poll task's body limit answers
// 413 whatever the encoding.
func TestPollTaskOversizedBody(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	tests := []struct {
		name, contentType, body string
	}{
		{"JSON", "application/json", `{"name":"` + big + `"}`},
		// Regression: ParseForm's MaxBytesError is turned into a 400 "malformed form body".
		{"form", "application/x-www-form-urlencoded", "name=" + big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			status, body := r.do(t, http.MethodPost, "/tasks/poll", tt.contentType, strings.NewReader(tt.body))
			if got, want := status, http.StatusRequestEntityTooLarge; got != want {
				t.Fatalf("POST /tasks/poll with %d bytes = %d %s; want %d", len(tt.body), got, body, want)
			}
			if msg := errorMessage(t, body); !strings.Contains(msg, "65536 bytes") {
				t.Errorf("error %q does not give the limit", msg)
			}
			r.assertUntouched(t)
		})
	}
}

func TestPollTaskTwiceReportsOnce(t *testing.T) {
	r := newRig(t)
	name := r.admin.AddOperation(r.project,
		adminfake.Running("PROCESSING", 500, 1000, 5000, 10000), adminfake.Successful(1000, 10000))
	var first record
	for i := range 2 {
		status, body := r.postForm(t, "/tasks/poll", url.Values{"name": {name}})
		if got, want := status, http.StatusOK; got != want {
			t.Fatalf("POST /tasks/poll #%d = %d %s; want %d", i+1, got, body, want)
		}
		rec := decodeRecord(t, body)
		if i == 0 {
			first = rec
		}
		if got, want := rec.Outcome, string(poller.OutcomeSuccess); got != want {
			t.Errorf("poll #%d outcome = %q; want %q", i+1, got, want)
		}
		if got, want := rec.Polls, 1; got != want {
			t.Errorf("poll #%d polls = %d; want %d", i+1, got, want)
		}
	}
	// The adopting read and one poll; none for the second task.
	if got, want := r.admin.Gets(name), first.Polls+1; got != want {
		t.Errorf("Admin API GETs = %d; want %d (none for the second task)", got, want)
	}
	r.onlyMessage(t)

	// The cron-started path ends the same way: an inline poll and a task for
	// the same operation send one report between them.
	r.admin.Script(adminfake.Successful(10, 100))
	status, body := r.do(t, http.MethodGet, "/cron/export", "", nil)
	if got, want := status, http.StatusAccepted; got != want {
		t.Fatalf("GET /cron/export = %d %s; want %d", got, body, want)
	}
	started := decodeRecord(t, body)
	r.inline.Wait()
	status, body = r.postForm(t, "/tasks/poll", url.Values{"name": {started.Name}})
	if got, want := status, http.StatusOK; got != want {
		t.Fatalf("POST /tasks/poll = %d %s; want %d", got, body, want)
	}
	msgs := r.slack.Messages()
	if got, want := len(msgs), 2; got != want {
		t.Fatalf("Slack got %d messages; want %d (one per operation): %+v", got, want, msgs)
	}
	var reported []string
	for _, m := range msgs {
		reported = append(reported, field(m, "Operation"))
	}
	if got, want := reported, []string{name, started.Name}; !reflect.DeepEqual(got, want) {
		t.Errorf("Slack reported operations %q; want %q", got, want)
	}
}

// field returns the value of the attachment field titled title.
func field(m slackfake.Message, title string) string {
	for _, a := range m.Attachments {
		for _, f := range a.Fields {
			if f.Title == title {
				return f.Value
			}
		}
	}
	return ""
}

func TestPollTaskUnknownOperation(t *testing.T) {
	r := newRig(t)
	name := "projects/" + r.project + "/operations/ASAneverstarted"
	status, body := r.postForm(t, "/tasks/poll", url.Values{"name": {name}})
	if got, want := status, http.StatusNotFound; got != want {
		t.Fatalf("POST /tasks/poll for an unknown operation = %d %s; want %d", got, body, want)
	}
	if msg := errorMessage(t, body); !strings.Contains(msg, name) {
		t.Errorf("error %q does not name the operation", msg)
	}
	if recs := r.records(t); len(recs) != 0 {
		t.Errorf("store holds %+v; want nothing", recs)
	}
	if got := len(r.slack.Messages()); got != 0 {
		t.Errorf("Slack got %d messages; want none", got)
	}
}

// TestHugePathLogsOneBoundedLine sends 300 KB request paths: each failed
// request logs one line, well within Cloud Logging's 256 KB, that holds
// the path once, cut, and answers an error that quotes it bounded.
func TestHugePathLogsOneBoundedLine(t *testing.T) {
	var logs testrig.SyncBuffer
	srv := httptest.NewServer(server.New(server.Config{
		Logger:   cloudlog.New(&logs, true, "example-proj"),
		Defaults: poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"},
		Records:  memstore.New(),
	}))
	t.Cleanup(srv.Close)
	id := strings.Repeat("a", 300<<10)
	for _, path := range []string{"/exports/" + id, "/api/exports/" + id, "/api/exports?cursor=" + id} {
		before := len(logs.String())
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || len(body) > 8<<10 {
			t.Errorf("GET %.40s… = %d with %d bytes; want 400 with a bounded message", path, resp.StatusCode, len(body))
		}
		line := strings.TrimSuffix(logs.String()[before:], "\n")
		if strings.Count(line, "\n") != 0 || !strings.Contains(line, "request failed") {
			t.Fatalf("GET %.40s… logged %.300q; want one line", path, line)
		}
		if n := len(line); n > 16<<10 {
			t.Errorf("GET %.40s… logged a line of %d bytes; want at most %d", path, n, 16<<10)
		}
		if !strings.Contains(line, "[cut: ") {
			t.Errorf("GET %.40s… logged %.300q…; want it to say the cut", path, line)
		}
	}
}

// TestExportPrefixTooLong checks that POST /export refuses a prefix whose
// path is longer than a Cloud Storage object name, naming the field.
func TestExportPrefixTooLong(t *testing.T) {
	srv := httptest.NewServer(server.New(server.Config{
		Logger:   slog.New(slog.DiscardHandler),
		Defaults: poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"},
	}))
	t.Cleanup(srv.Close)
	prefix := "gs://example-backups/" + strings.Repeat("p", 1500-len("gs://example-backups/"))
	resp, err := http.Post(srv.URL+"/export", "application/json", strings.NewReader(`{"outputUrlPrefix":"`+prefix+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "outputUrlPrefix: ") || !strings.Contains(string(body), "at most 1024") {
		t.Errorf("POST /export with a 1,500-byte prefix = %d %.300s; want 400 naming outputUrlPrefix and the limit", resp.StatusCode, body)
	}
}
