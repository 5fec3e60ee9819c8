package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/preflight"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

// TestDoctorCommand runs dsexport doctor against fake-gcs-server (reached
// through STORAGE_EMULATOR_HOST, as the storage client does) and the
// Firestore Admin API fake: a missing bucket fails with its fix (exit 1), an
// unknown target is a configuration mistake (exit 2).
func TestDoctorCommand(t *testing.T) {
	emptyStorage(t)
	fs := firestorefake.New(t)
	fs.AddDatabase("doctor-cli", poller.DefaultDatabase)
	env := map[string]string{
		"DSEXPORT_PROJECT": "doctor-cli", "DSEXPORT_OUTPUT_PREFIX": "gs://doctor-cli-missing/daily",
		"DSEXPORT_FIRESTORE_ENDPOINT": fs.URL(), "DSEXPORT_PROJECT_NUMBER": "42",
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"doctor"}, getenvWith(env), &stdout, &stderr)
	var ue *usageError
	if !errors.Is(err, errChecksFailed) || errors.As(err, &ue) {
		t.Fatalf("doctor with a missing bucket: %v (exit 1 wanted); stderr %s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"NAME", "TARGET", "FIX", "bucket", "FAIL", "gcloud storage buckets create gs://doctor-cli-missing --location=US"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	stdout.Reset()
	err = run(context.Background(), []string{"doctor", "--json"}, getenvWith(env), &stdout, &stderr)
	var checks []poller.Check
	if jerr := json.Unmarshal(stdout.Bytes(), &checks); jerr != nil || !errors.Is(err, errChecksFailed) || len(checks) == 0 || checks[0].Fix == "" {
		t.Errorf("--json: %v, %v, %s", err, jerr, stdout.String())
	}

	err = run(context.Background(), []string{"doctor", "--target", "nope"}, getenvWith(env), &stdout, &stderr)
	if !errors.As(err, &ue) {
		t.Errorf("--target nope: %v, want a usage error (exit 2)", err)
	}
	env["DSEXPORT_PROJECT_NUMBER"] = "forty-two"
	err = run(context.Background(), []string{"doctor"}, getenvWith(env), &stdout, &stderr)
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "DSEXPORT_PROJECT_NUMBER") {
		t.Errorf("a bad project number: %v, want a usage error naming DSEXPORT_PROJECT_NUMBER", err)
	}
}

// TestDoctorSlackAndQueue runs dsexport doctor with a bot token and Cloud
// Tasks dispatch: the token and both channels (the default one and a
// target's) are checked against slackfake, the queue against tasksfake;
// a channel the bot is not in and a missing queue fail with their fixes,
// and the token shows nowhere.
func TestDoctorSlackAndQueue(t *testing.T) {
	emptyStorage(t)
	fs := firestorefake.New(t)
	fs.AddDatabase("doctor-slack", poller.DefaultDatabase)
	const token = "xoxb-doctor-cli-secret"
	slack := slackfake.New(t, token)
	slack.SetChannels("#backups")
	slack.SetNotInChannel("#shop")
	queue := "projects/doctor-slack/locations/us-central1/queues/dsexport-poll"
	fakeTasks := tasksfake.New(t)
	env := map[string]string{
		"DSEXPORT_PROJECT": "doctor-slack", "DSEXPORT_OUTPUT_PREFIX": "gs://doctor-slack-missing/daily",
		"DSEXPORT_FIRESTORE_ENDPOINT": fs.URL(),
		"SLACK_TOKEN":                 token, "SLACK_CHANNEL": "#backups", "SLACK_API_URL": slack.URL(),
		"DSEXPORT_DISPATCH": "cloudtasks", "DSEXPORT_TASKS_QUEUE": queue, "DSEXPORT_TASKS_ENDPOINT": fakeTasks.Addr(),
		"DSEXPORT_TASKS_URL": "https://dsexport.example.com", "DSEXPORT_TASKS_SERVICE_ACCOUNT": "dsexport@doctor-slack.iam.gserviceaccount.com",
	}
	doctorJSON := func() []poller.Check {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"doctor", "--json"}, getenvWith(env), &stdout, &stderr)
		if !errors.Is(err, errChecksFailed) {
			t.Fatalf("doctor: %v (exit 1 wanted, the bucket is missing); stderr %s", err, stderr.String())
		}
		if strings.Contains(stdout.String()+stderr.String(), token) {
			t.Errorf("the token shows in the output:\n%s\n%s", stdout.String(), stderr.String())
		}
		var checks []poller.Check
		if err := json.Unmarshal(stdout.Bytes(), &checks); err != nil {
			t.Fatal(err)
		}
		return checks
	}
	named := func(checks []poller.Check, name string) []poller.Check {
		var out []poller.Check
		for _, c := range checks {
			if c.Name == name {
				out = append(out, c)
			}
		}
		return out
	}

	checks := doctorJSON()
	if got := named(checks, preflight.CheckSlackAuth); len(got) != 1 || !got[0].OK {
		t.Errorf("slack token checks = %+v; want one passing", got)
	}
	if got := named(checks, preflight.CheckSlackChannel); len(got) != 1 || !got[0].OK || !strings.Contains(got[0].Detail, "#backups") {
		t.Errorf("slack channel checks = %+v; want #backups passing", got)
	}
	if got := named(checks, preflight.CheckQueue); len(got) != 1 || !got[0].OK {
		t.Errorf("queue checks = %+v; want one passing", got)
	}

	// A target whose channel the bot is not in, and a queue that is gone.
	file := filepath.Join(t.TempDir(), "dsexport.yaml")
	yaml := "store: {project: doctor-slack}\ntargets:\n  - name: shop\n    project: doctor-slack\n" +
		"    export: {prefix: gs://doctor-slack-missing/shop}\n    slackChannel: \"#shop\"\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// getenvWith drops an empty variable from its defaults.
	env["DSEXPORT_PROJECT"], env["DSEXPORT_OUTPUT_PREFIX"] = "", ""
	env["DSEXPORT_CONFIG"] = file
	fakeTasks.AddQueue(queue + "-other")
	checks = doctorJSON()
	channels := named(checks, preflight.CheckSlackChannel)
	if len(channels) != 2 || !channels[0].OK || channels[1].OK || channels[1].Fix != "/invite @"+slackfake.BotUser+" in #shop" {
		t.Errorf("slack channel checks = %+v; want #backups passing, #shop failing with its /invite", channels)
	}
	if got, want := named(checks, preflight.CheckQueue), "gcloud tasks queues create dsexport-poll --location=us-central1 --project=doctor-slack"; len(got) != 1 || got[0].OK || got[0].Fix != want {
		t.Errorf("queue checks = %+v; want one failing with %q", got, want)
	}
	if left := slack.Scheduled(); len(left) != 0 || len(slack.Messages()) != 0 {
		t.Errorf("doctor left messages: scheduled %+v, posted %+v", left, slack.Messages())
	}
}

// emptyStorage points STORAGE_EMULATOR_HOST at a fake-gcs-server without a
// bucket, whose new buckets are in US.
func emptyStorage(t *testing.T) {
	t.Helper()
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, BucketsLocation: "US"})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gcs.HTTPHandler())
	t.Cleanup(front.Close)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(front.URL, "http://"))
}

// TestDoctorDrillChecks runs dsexport doctor on a target with a restore
// drill into another project, Cloud Resource Manager's testIamPermissions
// answered over HTTP (DSEXPORT_RESOURCEMANAGER_ENDPOINT) with only the
// import held: the drill permissions check fails naming what is missing and
// the grant, the table shows it, and the drill service agent check is
// skipped for want of the scratch project's number.
func TestDoctorDrillChecks(t *testing.T) {
	emptyStorage(t)
	fs := firestorefake.New(t)
	fs.AddDatabase("doctor-drill", poller.DefaultDatabase)
	var asked []string
	rm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/projects/doctor-drill-scratch:testIamPermissions" {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`))
			return
		}
		var req struct{ Permissions []string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("testIamPermissions body: %v", err)
		}
		asked = req.Permissions
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Write([]byte(`{"permissions": ["datastore.databases.import"]}`))
	}))
	t.Cleanup(rm.Close)
	file := filepath.Join(t.TempDir(), "dsexport.yaml")
	yaml := "store: {project: doctor-drill}\ntargets:\n  - name: shop\n    project: doctor-drill\n" +
		"    export: {prefix: gs://doctor-drill-missing/shop}\n" +
		"    drill: {every: 7d, project: doctor-drill-scratch, database: scratch}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DSEXPORT_CONFIG": file, "DSEXPORT_FIRESTORE_ENDPOINT": fs.URL(),
		"DSEXPORT_RESOURCEMANAGER_ENDPOINT": rm.URL, "DSEXPORT_PROJECT_NUMBER": "doctor-drill=42",
		// getenvWith drops an empty variable from its defaults.
		"DSEXPORT_PROJECT": "", "DSEXPORT_OUTPUT_PREFIX": ""}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"doctor", "--json"}, getenvWith(env), &stdout, &stderr)
	if !errors.Is(err, errChecksFailed) {
		t.Fatalf("doctor: %v (exit 1 wanted); stderr %s", err, stderr.String())
	}
	var checks []poller.Check
	if err := json.Unmarshal(stdout.Bytes(), &checks); err != nil {
		t.Fatal(err)
	}
	var own, agent *poller.Check
	for i, c := range checks {
		switch c.Name {
		case preflight.CheckDrillOwn:
			own = &checks[i]
		case preflight.CheckDrillAgent:
			agent = &checks[i]
		}
	}
	wantFix := "gcloud projects add-iam-policy-binding doctor-drill-scratch --member=serviceAccount:DSEXPORT_SERVICE_ACCOUNT --role=roles/datastore.owner"
	if own == nil || own.OK || own.Target != "shop" || own.Fix != wantFix || !strings.Contains(own.Detail, "datastore.entities.delete") {
		t.Errorf("drill permissions = %+v; want shop failing with %q, naming datastore.entities.delete", own, wantFix)
	}
	if want := []string{"datastore.databases.import", "datastore.operations.get", "datastore.entities.list", "datastore.entities.delete"}; strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("asked %v, want %v", asked, want)
	}
	if agent == nil || !agent.OK || !agent.Warning || !strings.Contains(agent.Detail, "doctor-drill-scratch") {
		t.Errorf("drill service agent = %+v; want skipped for the scratch project's number", agent)
	}

	stdout.Reset()
	run(context.Background(), []string{"doctor"}, getenvWith(env), &stdout, &stderr)
	if out := stdout.String(); !strings.Contains(out, preflight.CheckDrillOwn) || !strings.Contains(out, wantFix) {
		t.Errorf("table lacks the drill permissions check and its fix:\n%s", out)
	}
}
