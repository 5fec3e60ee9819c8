package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/tasks"
)

// validEnv is the least configuration an export needs.
var validEnv = map[string]string{
	"DSEXPORT_PROJECT":       "example-proj",
	"DSEXPORT_OUTPUT_PREFIX": "gs://example-backups/daily",
}

// getenvWith is validEnv changed by overrides; an empty value unsets the variable.
func getenvWith(overrides map[string]string) func(string) string {
	vars := map[string]string{}
	for k, v := range validEnv {
		vars[k] = v
	}
	for k, v := range overrides {
		if v == "" {
			delete(vars, k)
			continue
		}
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

// webhookSecret is the secret part of the webhook URLs below; no error may show it.
const webhookSecret = "XyZsEcReTwEbHoOk"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		// want must appear in the error: the variable at fault.
		want string
		// notWant must not appear in the error.
		notWant string
	}{
		{"poll interval not a duration", map[string]string{"DSEXPORT_POLL_INTERVAL": "soon"}, "DSEXPORT_POLL_INTERVAL", ""},
		{"poll interval negative", map[string]string{"DSEXPORT_POLL_INTERVAL": "-1s"}, "DSEXPORT_POLL_INTERVAL", ""},
		{"poll interval zero", map[string]string{"DSEXPORT_POLL_INTERVAL": "0"}, "DSEXPORT_POLL_INTERVAL", ""},
		{"max polls zero", map[string]string{"DSEXPORT_MAX_POLLS": "0"}, "DSEXPORT_MAX_POLLS", ""},
		{"unknown poll schedule", map[string]string{"DSEXPORT_POLL_SCHEDULE": "smart"}, "DSEXPORT_POLL_SCHEDULE", ""},
		{"poll min not a duration", map[string]string{"DSEXPORT_POLL_MIN": "soon"}, "DSEXPORT_POLL_MIN", ""},
		{"poll max zero", map[string]string{"DSEXPORT_POLL_MAX": "0s"}, "DSEXPORT_POLL_MAX", ""},
		{"poll min over max", map[string]string{"DSEXPORT_POLL_MIN": "20m"}, "DSEXPORT_POLL_MIN", ""},
		{"unknown Slack progress mode", map[string]string{"DSEXPORT_SLACK_PROGRESS": "sometimes"}, "DSEXPORT_SLACK_PROGRESS", ""},
		{"stale after not a duration", map[string]string{"DSEXPORT_STALE_AFTER": "a day"}, "DSEXPORT_STALE_AFTER", ""},
		{"stale after zero", map[string]string{"DSEXPORT_STALE_AFTER": "0s"}, "DSEXPORT_STALE_AFTER", ""},
		{"cron window a day", map[string]string{"DSEXPORT_CRON_WINDOW": "24h"}, "DSEXPORT_CRON_WINDOW", ""},
		{"sweep every zero", map[string]string{"DSEXPORT_SWEEP_EVERY": "0s"}, "DSEXPORT_SWEEP_EVERY", ""},
		{"cron window negative", map[string]string{"DSEXPORT_CRON_WINDOW": "-1h"}, "DSEXPORT_CRON_WINDOW", ""},
		{"verify not on or off", map[string]string{"DSEXPORT_VERIFY": "yes"}, "DSEXPORT_VERIFY", ""},
		{"verify timeout past the dispatch deadline", map[string]string{"K_SERVICE": "dsexport", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
			"DSEXPORT_TASKS_URL": "https://dsexport.example.com", "DSEXPORT_TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
			"DSEXPORT_VERIFY_TIMEOUT": "6m"}, "DSEXPORT_VERIFY_TIMEOUT", ""},
		{"verify timeout not a duration", map[string]string{"DSEXPORT_VERIFY_TIMEOUT": "3"}, "DSEXPORT_VERIFY_TIMEOUT", ""},
		{"verify timeout zero", map[string]string{"DSEXPORT_VERIFY_TIMEOUT": "0s"}, "DSEXPORT_VERIFY_TIMEOUT", ""},
		{"shrink warn not a number", map[string]string{"DSEXPORT_SHRINK_WARN": "lots"}, "DSEXPORT_SHRINK_WARN", ""},
		{"shrink warn NaN", map[string]string{"DSEXPORT_SHRINK_WARN": "NaN%"}, "DSEXPORT_SHRINK_WARN", ""},
		{"shrink warn 100%", map[string]string{"DSEXPORT_SHRINK_WARN": "100%"}, "DSEXPORT_SHRINK_WARN", ""},
		{"poll budget not a duration", map[string]string{"DSEXPORT_POLL_BUDGET": "a day"}, "DSEXPORT_POLL_BUDGET", ""},
		{"poll budget under the interval", map[string]string{"DSEXPORT_POLL_BUDGET": "30s"}, "DSEXPORT_POLL_BUDGET", ""},
		{"poll budget over the Cloud Run task deadline", map[string]string{"K_SERVICE": "s", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
			"DSEXPORT_TASKS_URL": "https://s.example", "DSEXPORT_TASKS_SERVICE_ACCOUNT": "t@p.iam.gserviceaccount.com",
			"DSEXPORT_POLL_BUDGET": "45m"}, "DSEXPORT_POLL_BUDGET", ""},
		{"no poll budget for a task", map[string]string{"GAE_ENV": "standard", "GAE_SERVICE": "dsexport", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
			"DSEXPORT_POLL_BUDGET": "0"}, "DSEXPORT_POLL_BUDGET", ""},
		// Regression: these were found only when serve built the tasks client, and exited 1.
		{"malformed queue", map[string]string{"DSEXPORT_DISPATCH": "cloudtasks", "DSEXPORT_TASKS_QUEUE": "dsexport-poll",
			"DSEXPORT_TASKS_URL": "https://s.example", "DSEXPORT_TASKS_SERVICE_ACCOUNT": "t@p.iam.gserviceaccount.com"}, "DSEXPORT_TASKS_QUEUE", ""},
		{"HTTP tasks without a URL", map[string]string{"K_SERVICE": "s", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
			"DSEXPORT_TASKS_SERVICE_ACCOUNT": "t@p.iam.gserviceaccount.com"}, "DSEXPORT_TASKS_URL", ""},
		{"HTTP tasks URL with a query", map[string]string{"K_SERVICE": "s", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
			"DSEXPORT_TASKS_URL": "https://s.example/?x=1", "DSEXPORT_TASKS_SERVICE_ACCOUNT": "t@p.iam.gserviceaccount.com"}, "DSEXPORT_TASKS_URL", ""},
		{"HTTP tasks without a service account", map[string]string{"K_SERVICE": "s", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
			"DSEXPORT_TASKS_URL": "https://s.example"}, "DSEXPORT_TASKS_SERVICE_ACCOUNT", ""},
		{"App Engine tasks without a service", map[string]string{"GAE_ENV": "standard", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q"}, "GAE_SERVICE", ""},
		{"cloud tasks without a queue", map[string]string{"K_SERVICE": "s"}, "DSEXPORT_TASKS_QUEUE", ""},
		{"bad Cloud Run IAM switch", map[string]string{"DSEXPORT_CLOUD_RUN_IAM": "maybe"}, "DSEXPORT_CLOUD_RUN_IAM", ""},
		{"two Slack secrets", map[string]string{"DSEXPORT_SLACK_TOKEN_SECRET": "projects/p/secrets/s/versions/1", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/" + webhookSecret}, "DSEXPORT_SLACK_TOKEN_SECRET", webhookSecret},
		{"token secret without a channel", map[string]string{"DSEXPORT_SLACK_TOKEN_SECRET": "projects/p/secrets/s/versions/1"}, "SLACK_CHANNEL", ""},
		{"max polls negative", map[string]string{"DSEXPORT_MAX_POLLS": "-3"}, "DSEXPORT_MAX_POLLS", ""},
		{"max polls not a number", map[string]string{"DSEXPORT_MAX_POLLS": "x"}, "DSEXPORT_MAX_POLLS", ""},
		{"unknown time zone", map[string]string{"DSEXPORT_TIMEZONE": "Mars/Olympus"}, "DSEXPORT_TIMEZONE", ""},
		{"output prefix not gs", map[string]string{"DSEXPORT_OUTPUT_PREFIX": "s3://b"}, "DSEXPORT_OUTPUT_PREFIX", ""},
		{"output prefix bad bucket", map[string]string{"DSEXPORT_OUTPUT_PREFIX": "gs://UPPER"}, "DSEXPORT_OUTPUT_PREFIX", ""},
		{"output prefix missing", map[string]string{"DSEXPORT_OUTPUT_PREFIX": ""}, "DSEXPORT_OUTPUT_PREFIX", ""},
		{"output prefix of 1500 bytes", map[string]string{"DSEXPORT_OUTPUT_PREFIX": "gs://example-backups/" + strings.Repeat("p", 1479)}, "DSEXPORT_OUTPUT_PREFIX", ""},
		{"no project at all", map[string]string{"DSEXPORT_PROJECT": ""}, "DSEXPORT_PROJECT", ""},
		{"invalid project", map[string]string{"DSEXPORT_PROJECT": "Bad_Project"}, "DSEXPORT_PROJECT", ""},
		// Regression: the error names DSEXPORT_PROJECT, which is not set, for the value of GOOGLE_CLOUD_PROJECT.
		{"invalid fallback project", map[string]string{"DSEXPORT_PROJECT": "", "GOOGLE_CLOUD_PROJECT": "Bad_Project"}, "GOOGLE_CLOUD_PROJECT:", ""},
		{"reserved kind", map[string]string{"DSEXPORT_KINDS": "User,__Stat_Total__"}, "DSEXPORT_KINDS", ""},
		{"reserved namespace", map[string]string{"DSEXPORT_NAMESPACES": "__x__"}, "DSEXPORT_NAMESPACES", ""},
		{"slack token without channel", map[string]string{"SLACK_TOKEN": "xoxb-1-2-abc"}, "SLACK_CHANNEL", ""},
		{"slack token and webhook", map[string]string{"SLACK_TOKEN": "xoxb-1-2-abc", "SLACK_CHANNEL": "#b",
			"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/" + webhookSecret}, "SLACK_WEBHOOK_URL", webhookSecret},
		{"webhook without scheme", map[string]string{"SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/" + webhookSecret}, "SLACK_WEBHOOK_URL", webhookSecret},
		{"webhook not http", map[string]string{"SLACK_WEBHOOK_URL": "ftp://hooks.slack.com/services/T0/B0/" + webhookSecret}, "SLACK_WEBHOOK_URL", webhookSecret},
		{"webhook unparsable", map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/%zz/" + webhookSecret}, "SLACK_WEBHOOK_URL", webhookSecret},
		{"webhook without host", map[string]string{"SLACK_WEBHOOK_URL": "https:///services/T0/B0/" + webhookSecret}, "SLACK_WEBHOOK_URL", webhookSecret},
		{"slack API URL not http", map[string]string{"SLACK_API_URL": "slack.test/api/"}, "SLACK_API_URL", ""},
		{"admin endpoint not http", map[string]string{"DSEXPORT_ADMIN_ENDPOINT": "localhost:8081"}, "DSEXPORT_ADMIN_ENDPOINT", ""},
		{"unknown dispatch", map[string]string{"DSEXPORT_DISPATCH": "bogus"}, "DSEXPORT_DISPATCH", ""},
		{"cloudtasks dispatch without a queue", map[string]string{"DSEXPORT_DISPATCH": "cloudtasks"}, "DSEXPORT_TASKS_QUEUE", ""},
		{"port not a number", map[string]string{"PORT": "abc"}, "PORT", ""},
		{"port out of range", map[string]string{"PORT": "65536"}, "PORT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newSettings(getenvWith(tt.env)).parse(forExport)
			if err == nil {
				t.Fatalf("parse(forExport) with %v = %+v, nil; want an error naming %s", tt.env, c, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse(forExport) error %q does not name %s", err, tt.want)
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("parse(forExport) error %q shows %q", err, tt.notWant)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("parse(forExport) error %q is %T; want *usageError (exit 2)", err, err)
			}
		})
	}
}

// defaultPolling is the polling section when no variable sets it, with
// the budget of the given dispatch.
func defaultPolling(budget time.Duration) pollingSection {
	return pollingSection{adaptive: true, interval: 60 * time.Second, maxPolls: 60, min: 5 * time.Second, max: 15 * time.Minute,
		budget: budget, cronWindow: time.Hour, staleAfter: 26 * time.Hour, shrinkWarn: 0.1, startsPerMinute: 20, verify: true, verifyTimeout: 3 * time.Minute}
}

// TestParseServe: serve alone judges the authentication settings, which the
// CLI commands, run with the operator's own credentials, do not use.
func TestParseServe(t *testing.T) {
	s := newSettings(getenvWith(cloudRunServe(map[string]string{"DSEXPORT_INVOKERS": ""})))
	if _, err := s.parse(forExport); err != nil {
		t.Errorf("parse(forExport) on Cloud Run without invokers = %v; want nil", err)
	}
	if _, err := s.parse(forServe); err == nil || !strings.Contains(err.Error(), "DSEXPORT_INVOKERS") {
		t.Errorf("parse(forServe) on Cloud Run without invokers = %v; want an error naming DSEXPORT_INVOKERS", err)
	}
	if _, err := newSettings(getenvWith(cloudRunServe(nil))).parse(forServe); err != nil {
		t.Errorf("parse(forServe) of a complete Cloud Run configuration = %v; want nil", err)
	}
}

func TestParseValid(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		purpose purpose
		want    config
	}{
		{
			name: "every variable",
			env: map[string]string{
				"PORT":                       "9090",
				"GOOGLE_CLOUD_PROJECT":       "app-proj",
				"DSEXPORT_PROJECT":           "data-proj",
				"DSEXPORT_OUTPUT_PREFIX":     "gs://example-backups/daily",
				"DSEXPORT_KINDS":             " User, Order ,,",
				"DSEXPORT_NAMESPACES":        "(default),tenant-a",
				"DSEXPORT_POLL_SCHEDULE":     "fixed",
				"DSEXPORT_POLL_INTERVAL":     "90s",
				"DSEXPORT_MAX_POLLS":         "7",
				"DSEXPORT_POLL_MIN":          "10s",
				"DSEXPORT_POLL_MAX":          "20m",
				"DSEXPORT_STALE_AFTER":       "50h",
				"DSEXPORT_SHRINK_WARN":       "25",
				"DSEXPORT_CRON_WINDOW":       "2h",
				"DSEXPORT_STARTS_PER_MINUTE": "100000",
				"DSEXPORT_VERIFY":            "off",
				"DSEXPORT_VERIFY_TIMEOUT":    "10m",
				"DSEXPORT_POLL_BUDGET":       "10m",
				"DSEXPORT_TIMEZONE":          "Asia/Tokyo",
				"DSEXPORT_ADMIN_ENDPOINT":    "http://127.0.0.1:8081/",
				"DATASTORE_EMULATOR_HOST":    "127.0.0.1:8599",
				"SLACK_TOKEN":                "xoxb-1-2-abc",
				"SLACK_CHANNEL":              "#backups",
				"SLACK_API_URL":              "http://127.0.0.1:9999/api/",
				"DSEXPORT_DISPATCH":          "inline",
				"K_SERVICE":                  "dsexport",
			},
			purpose: forExport,
			want: config{
				port: "9090", platform: server.CloudRun, onCloud: true, loc: tokyo,
				adminEndpoint: "http://127.0.0.1:8081/", emulatorHost: "127.0.0.1:8599",
				export: exportSection{storeProject: "app-proj", ExportRequest: poller.ExportRequest{
					Project: "data-proj", OutputURLPrefix: "gs://example-backups/daily",
					// Blanks are trimmed and empty entries dropped; "(default)" is the default namespace.
					Kinds: []string{"User", "Order"}, Namespaces: []string{"", "tenant-a"},
				}},
				// The one target of the variables, as before targets: no name.
				targets: []poller.Target{{Project: "data-proj", Database: "(default)", Export: &poller.ExportRequest{
					Project: "data-proj", OutputURLPrefix: "gs://example-backups/daily",
					Kinds: []string{"User", "Order"}, Namespaces: []string{"", "tenant-a"},
				}}},
				storeProject: "app-proj", storeDatabase: "dsexport",
				polling: pollingSection{interval: 90 * time.Second, maxPolls: 7, min: 10 * time.Second, max: 20 * time.Minute,
					budget: 10 * time.Minute, cronWindow: 2 * time.Hour, staleAfter: 50 * time.Hour, shrinkWarn: 0.25, startsPerMinute: 100000, verify: false, verifyTimeout: 10 * time.Minute},
				slack:    slackSection{token: "xoxb-1-2-abc", channel: "#backups", apiURL: "http://127.0.0.1:9999/api/", progress: true},
				dispatch: dispatchSection{mode: "inline", sweepEvery: time.Minute},
				auth:     server.AuthConfig{Platform: server.CloudRun},
			},
		},
		{
			name: "defaults",
			env: map[string]string{"DSEXPORT_PROJECT": "", "GOOGLE_CLOUD_PROJECT": "app-proj", "GAE_ENV": "standard",
				"GAE_SERVICE": "dsexport", "GAE_VERSION": "v1", "DSEXPORT_TASKS_QUEUE": "projects/app-proj/locations/us-central1/queues/dsexport-poll"},
			purpose: forExport,
			want: config{port: "8080", platform: server.AppEngine, onCloud: true, loc: time.UTC,
				export: exportSection{storeProject: "app-proj", ExportRequest: poller.ExportRequest{Project: "app-proj", OutputURLPrefix: "gs://example-backups/daily"}},
				targets: []poller.Target{{Project: "app-proj", Database: "(default)",
					Export: &poller.ExportRequest{Project: "app-proj", OutputURLPrefix: "gs://example-backups/daily"}}},
				storeProject: "app-proj", storeDatabase: "dsexport",
				// On App Engine the hand-off is a task routed to this service, and
				// a poll request works 23h of basic scaling's 24h.
				polling: defaultPolling(23 * time.Hour),
				dispatch: dispatchSection{mode: "cloudtasks", tasks: tasks.Config{
					Queue: "projects/app-proj/locations/us-central1/queues/dsexport-poll", Target: tasks.AppEngine, Service: "dsexport"}},
				auth: server.AuthConfig{Platform: server.AppEngine}},
		},
		{
			name: "Cloud Run",
			env: map[string]string{"K_SERVICE": "dsexport", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
				"DSEXPORT_TASKS_URL": "https://dsexport-abc-uc.a.run.app", "DSEXPORT_TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
				"DSEXPORT_AUDIENCE": "https://dsexport", "DSEXPORT_INVOKERS": "tasks@p.iam.gserviceaccount.com, ops@example.com",
				"DSEXPORT_CLOUD_RUN_IAM": "true"},
			purpose: forExport,
			want: config{port: "8080", platform: server.CloudRun, onCloud: true, loc: time.UTC,
				export: exportSection{storeProject: "example-proj", ExportRequest: poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"}},
				targets: []poller.Target{{Project: "example-proj", Database: "(default)",
					Export: &poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"}}},
				storeProject: "example-proj", storeDatabase: "dsexport",
				polling: defaultPolling(25 * time.Minute),
				dispatch: dispatchSection{mode: "cloudtasks", tasks: tasks.Config{Queue: "projects/p/locations/l/queues/q", Target: tasks.HTTP,
					URL: "https://dsexport-abc-uc.a.run.app", ServiceAccount: "tasks@p.iam.gserviceaccount.com", Audience: "https://dsexport"}},
				auth: server.AuthConfig{Platform: server.CloudRun, Audience: "https://dsexport",
					Invokers: []string{"tasks@p.iam.gserviceaccount.com", "ops@example.com"}, CloudRunIAM: true}},
		},
		{
			name:    "export project is the store project",
			env:     map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/" + webhookSecret},
			purpose: forExport,
			want: config{port: "8080", loc: time.UTC,
				export: exportSection{storeProject: "example-proj", ExportRequest: poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"}},
				targets: []poller.Target{{Project: "example-proj", Database: "(default)",
					Export: &poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily"}}},
				storeProject: "example-proj", storeDatabase: "dsexport",
				polling:  defaultPolling(0),
				slack:    slackSection{webhook: "https://hooks.slack.com/services/T0/B0/" + webhookSecret},
				dispatch: dispatchSection{mode: "inline", sweepEvery: time.Minute}},
		},
		{
			name:    "reading needs no output prefix",
			env:     map[string]string{"DSEXPORT_OUTPUT_PREFIX": "", "GAE_ENV": "localdev"},
			purpose: forReading,
			want: config{port: "8080", loc: time.UTC,
				export: exportSection{storeProject: "example-proj", ExportRequest: poller.ExportRequest{Project: "example-proj"}},
				// Reading needs no export: the target is only read about.
				targets:      []poller.Target{{Project: "example-proj", Database: "(default)"}},
				storeProject: "example-proj", storeDatabase: "dsexport",
				polling:  defaultPolling(0),
				dispatch: dispatchSection{mode: "inline", sweepEvery: time.Minute}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newSettings(getenvWith(tt.env)).parse(tt.purpose)
			if err != nil {
				t.Fatalf("parse(%v) = %v", tt.purpose, err)
			}
			if got, want := c.loc.String(), tt.want.loc.String(); got != want {
				t.Errorf("time zone = %q; want %q", got, want)
			}
			// Locations are compared by name above: LoadLocation returns a new one each time.
			got := *c
			got.loc = tt.want.loc
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parse(%v) =\n%+v\nwant\n%+v", tt.purpose, got, tt.want)
			}
		})
	}
}

// TestFlagsOverrideEnvironment checks that a flag wins over its variable.
func TestFlagsOverrideEnvironment(t *testing.T) {
	s := newSettings(getenvWith(map[string]string{"DSEXPORT_MAX_POLLS": "0", "DSEXPORT_KINDS": "User"}))
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	s.register(fs, "DSEXPORT_MAX_POLLS", "DSEXPORT_KINDS", "DSEXPORT_TIMEZONE")
	if err := fs.Parse([]string{"--max-polls=3", "--kinds=Order,Invoice", "--timezone=Europe/Berlin"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.parse(forExport)
	if err != nil {
		t.Fatalf("parse(forExport) = %v", err)
	}
	if got, want := c.polling.maxPolls, 3; got != want {
		t.Errorf("maxPolls = %d; want %d", got, want)
	}
	if got, want := c.export.Kinds, []string{"Order", "Invoice"}; !reflect.DeepEqual(got, want) {
		t.Errorf("kinds = %q; want %q", got, want)
	}
	if got, want := c.loc.String(), "Europe/Berlin"; got != want {
		t.Errorf("time zone = %q; want %q", got, want)
	}
}

// cloudRunServe is a complete configuration of serve on Cloud Run, changed
// by overrides (an empty value unsets the variable).
func cloudRunServe(overrides map[string]string) map[string]string {
	env := map[string]string{"K_SERVICE": "dsexport", "DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q",
		"DSEXPORT_TASKS_URL": "https://dsexport.example", "DSEXPORT_TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
		"DSEXPORT_AUDIENCE": "https://dsexport.example", "DSEXPORT_INVOKERS": "tasks@p.iam.gserviceaccount.com"}
	for k, v := range overrides {
		env[k] = v
	}
	return env
}

// TestRunUsageErrors runs the whole program with mistakes on the command
// line. Each fails before any client is built, so nothing is contacted.
func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		// want must appear in the error; notWant must not.
		want, notWant string
		// usage tells whether the usage text goes to stderr.
		usage bool
	}{
		{"max polls flag", []string{"export", "--max-polls=0"}, nil, "--max-polls", "DSEXPORT_MAX_POLLS", false},
		{"max polls flag over a valid variable", []string{"export", "--max-polls=-1"}, map[string]string{"DSEXPORT_MAX_POLLS": "5"}, "--max-polls", "DSEXPORT_MAX_POLLS", false},
		{"poll interval flag", []string{"export", "--poll-interval", "soon"}, nil, "--poll-interval", "DSEXPORT_POLL_INTERVAL", false},
		{"timezone flag", []string{"export", "--timezone=Mars/Olympus"}, nil, "--timezone", "DSEXPORT_TIMEZONE", false},
		{"output prefix flag", []string{"export", "--output-prefix=s3://b"}, nil, "--output-prefix", "DSEXPORT_OUTPUT_PREFIX", false},
		{"project flag", []string{"export", "--project=Bad_Project"}, nil, "--project", "DSEXPORT_PROJECT", false},
		{"kinds flag", []string{"export", "--kinds=__Stat_Total__"}, nil, "--kinds", "DSEXPORT_KINDS", false},
		{"slack channel flag emptied", []string{"export", "--slack-channel="}, map[string]string{"SLACK_TOKEN": "xoxb-1-2-abc", "SLACK_CHANNEL": "#b"}, "--slack-channel", "", false},
		{"port flag", []string{"serve", "--port=abc"}, nil, "--port", "", false},
		{"dispatch flag", []string{"serve", "--dispatch=bogus"}, nil, "--dispatch", "DSEXPORT_DISPATCH", false},
		{"flag of another command", []string{"list", "--max-polls=3"}, nil, "max-polls", "", false},
		{"unknown flag", []string{"export", "--bogus"}, nil, "bogus", "", false},
		{"export takes no arguments", []string{"export", "now"}, nil, "no arguments", "", false},
		{"status needs a name", []string{"status"}, nil, "argument", "", false},
		{"list limit", []string{"list", "--limit=0"}, nil, "--limit", "", false},
		// Regression: the authentication settings were judged only after serve had
		// built its clients, and their mistakes exited 1.
		{"serve on Cloud Run without an audience", []string{"serve"}, cloudRunServe(map[string]string{"DSEXPORT_AUDIENCE": ""}), "DSEXPORT_AUDIENCE", "", false},
		{"serve on Cloud Run without invokers", []string{"serve"}, cloudRunServe(map[string]string{"DSEXPORT_INVOKERS": ""}), "DSEXPORT_INVOKERS", "", false},
		{"serve with an IAM-prefixed invoker", []string{"serve"}, cloudRunServe(map[string]string{"DSEXPORT_INVOKERS": "serviceAccount:t@p.iam.gserviceaccount.com"}), "DSEXPORT_INVOKERS", "", false},
		{"serve on App Engine without an audience", []string{"serve"}, map[string]string{"GAE_ENV": "standard", "GAE_SERVICE": "dsexport",
			"DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q", "DSEXPORT_INVOKERS": "ops@example.com"}, "DSEXPORT_IAP_AUDIENCE", "", false},
		{"serve with a malformed IAP audience", []string{"serve"}, map[string]string{"GAE_ENV": "standard", "GAE_SERVICE": "dsexport",
			"DSEXPORT_TASKS_QUEUE": "projects/p/locations/l/queues/q", "DSEXPORT_INVOKERS": "ops@example.com", "DSEXPORT_IAP_AUDIENCE": "dsexport"}, "DSEXPORT_IAP_AUDIENCE", "", false},
		{"serve with a malformed queue", []string{"serve"}, cloudRunServe(map[string]string{"DSEXPORT_TASKS_QUEUE": "q"}), "DSEXPORT_TASKS_QUEUE", "", false},
		{"serve with a tasks URL that is not one", []string{"serve"}, cloudRunServe(map[string]string{"DSEXPORT_TASKS_URL": "dsexport.example"}), "DSEXPORT_TASKS_URL", "", false},
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`, "", true},
		{"no command", nil, nil, "no command", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, getenvWith(tt.env), &stdout, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil; want an error naming %s\nstdout:\n%s", tt.args, tt.want, stdout.String())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) error %q does not contain %q", tt.args, err, tt.want)
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("run(%q) error %q names %q; want the flag that was used", tt.args, err, tt.notWant)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("run(%q) error %q is %T; want *usageError (exit 2)", tt.args, err, err)
			}
			if got, want := strings.Contains(stderr.String(), "usage: dsexport"), tt.usage; got != want {
				t.Errorf("run(%q) printed usage = %v; want %v; stderr:\n%s", tt.args, got, want, stderr.String())
			}
		})
	}
}

// TestRunHelp asks each command for its flags. Help must only print: a help
// request that went on to run the command would start an export.
func TestRunHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"export", "-h"}, {"serve", "--help"}, {"list", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// No configuration at all: a command that ran would fail on it.
			err := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
			// Regression: parseFlags turns flag.ErrHelp into nil, so run goes on to run the command.
			if err != nil {
				t.Fatalf("run(%q) = %v; want nil (help only)", args, err)
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, "usage") && !strings.Contains(out, "Usage") {
				t.Errorf("run(%q) printed no help:\n%s", args, out)
			}
		})
	}
}

// TestHelpShowsDefaults: -h says what each flag is for and shows its
// built-in default, not what the environment holds now.
func TestHelpShowsDefaults(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := getenvWith(map[string]string{"DSEXPORT_MAX_POLLS": "5", "DSEXPORT_KINDS": "Secret"})
	if err := run(context.Background(), []string{"export", "-h"}, env, &stdout, &stderr); err != nil {
		t.Fatalf("run(export -h) = %v", err)
	}
	help := stderr.String()
	for _, want := range []string{
		"polls (GETs) per operation at most", "(DSEXPORT_MAX_POLLS; default 60)",
		"comma-separated kinds to export (DSEXPORT_KINDS; default all)",
		"(DSEXPORT_POLL_INTERVAL; default 60s)", "-poll-interval duration",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("export -h does not say %q:\n%s", want, help)
		}
	}
	for _, notWant := range []string{"default 5)", "Secret", `default ""`} {
		if strings.Contains(help, notWant) {
			t.Errorf("export -h shows %q, from the environment:\n%s", notWant, help)
		}
	}
}

// TestWrongFlagSaidOnce: the flag package prints its error before it returns
// it, and main prints the returned error; it must appear once.
func TestWrongFlagSaidOnce(t *testing.T) {
	for _, args := range [][]string{{"export", "--bogus"}, {"list", "--limit=many"}, {"simulate", "--n"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, getenvWith(nil), &stdout, &stderr)
		if err == nil {
			t.Fatalf("run(%q) = nil; want an error", args)
		}
		if out := stdout.String() + stderr.String(); out != "" {
			t.Errorf("run(%q) printed %q besides its error %q", args, out, err)
		}
		if !strings.Contains(err.Error(), "-h lists the flags") {
			t.Errorf("run(%q) error %q does not say how to list the flags", args, err)
		}
	}
}

func TestVersionText(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/dsexport/dsexport", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "bf5c765abc"},
			{Key: "vcs.time", Value: "2026-12-01T20:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{info, true, "dsexport v1.2.3 revision bf5c765abc (modified) of 2026-12-01T20:00:00Z\n"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "dsexport (devel)\n"},
		{nil, false, "dsexport: built without module information\n"},
	}
	for _, tt := range tests {
		if got := versionText(tt.info, tt.ok); got != tt.want {
			t.Errorf("versionText(%+v, %v) = %q; want %q", tt.info, tt.ok, got, tt.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("run(version) = %v", err)
	}
	if !strings.HasPrefix(stdout.String(), "dsexport ") {
		t.Errorf("run(version) printed %q; want a line starting with dsexport", stdout.String())
	}
	var usage bytes.Buffer
	if err := run(context.Background(), []string{"help"}, func(string) string { return "" }, &usage, &stderr); err != nil || !strings.Contains(usage.String(), "\n  version ") {
		t.Errorf("run(help) = %v, printed:\n%s\nwant version listed", err, usage.String())
	}
}

// TestCommandArgs: what each platform starts the binary with runs serve.
func TestCommandArgs(t *testing.T) {
	devAppserver := []string{"/tmp/tmpa1b2c3/runtime_config", "/tmp/tmpd4e5f6/port"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // nil: no command
	}{
		{"App Engine", nil, map[string]string{"GAE_ENV": "standard"}, []string{"serve"}},
		{"Cloud Run", nil, map[string]string{"K_SERVICE": "dsexport"}, []string{"serve"}},
		{"dev_appserver", devAppserver, map[string]string{"GAE_ENV": "localdev", "PORT": "31337"}, []string{"serve"}},
		{"dev_appserver without arguments", nil, map[string]string{"GAE_ENV": "localdev"}, []string{"serve"}},
		{"a command under dev_appserver's variables", []string{"list", "--json"}, map[string]string{"GAE_ENV": "localdev"}, []string{"list", "--json"}},
		{"a command", []string{"status", "123"}, nil, []string{"status", "123"}},
		{"nothing on a laptop", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := commandArgs(tt.args, func(k string) string { return tt.env[k] })
			if !reflect.DeepEqual(got, tt.want) || ok != (tt.want != nil) {
				t.Errorf("commandArgs(%q) with %v = %q, %v; want %q", tt.args, tt.env, got, ok, tt.want)
			}
		})
	}
}
