package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
)

const (
	token   = "xoxb-1234567890-0987654321-SeCrEtToKeNvAlUe"
	channel = "#backups"

	successName   = "projects/example-proj/operations/ASA1MTAwNDQxNjAJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ"
	failedName    = "projects/example-proj/operations/ASAyMDcxNzIzNTMJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ"
	cancelledName = "projects/example-proj/operations/ASAzNTE4OTI0MTgJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ"
	outputURL     = "gs://example-backups/daily/2026-11-23T03:00:04_43519/2026-11-23T03:00:04_43519.overall_export_metadata"
	permission    = "Service account service-123456789@gcp-sa-datastore.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object."
	startError    = "googleapi: Error 403: Permission denied on resource project example-proj., forbidden"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The snapshots are admin/testdata/wire/*.json as the adapter parses them. They
// are functions so no test can change another's data.

func successful() poller.Operation {
	return poller.Operation{
		Name: successName, Project: "example-proj", Done: true, State: poller.StateSuccessful, Trigger: poller.TriggerCron,
		Kinds: []string{"User", "Order"}, Namespaces: []string{""},
		OutputURLPrefix: "gs://example-backups/daily", OutputURL: outputURL,
		EntitiesCompleted: 21933027, EntitiesEstimated: 21898182,
		BytesCompleted: 12421772610, BytesEstimated: 12395423718,
		StartTime: ts("2026-11-23T03:00:04.837Z"), EndTime: ts("2026-11-23T03:53:11.204Z"),
	}
}

func failed() poller.Operation {
	return poller.Operation{
		Name: failedName, Project: "example-proj", Done: true, State: poller.StateFailed,
		OutputURLPrefix:   "gs://example-backups/daily",
		EntitiesEstimated: 21898182, BytesEstimated: 12395423718,
		StartTime: ts("2026-11-23T03:00:04.837Z"), EndTime: ts("2026-11-23T03:02:40.017Z"),
		ErrorCode: 7, ErrorMessage: permission,
	}
}

func cancelled() poller.Operation {
	return poller.Operation{
		Name: cancelledName, Project: "example-proj", Done: true, State: poller.StateCancelled,
		OutputURLPrefix:   "gs://example-backups/daily",
		EntitiesCompleted: 1203344, BytesCompleted: 611250312,
		StartTime: ts("2026-11-23T03:00:04.837Z"), EndTime: ts("2026-11-23T03:11:52.550Z"),
		ErrorCode: 1, ErrorMessage: "The operation was cancelled.",
	}
}

func running() poller.Operation {
	return poller.Operation{
		Name: successName, Project: "example-proj", State: poller.StateProcessing, Trigger: poller.TriggerCron,
		Kinds: []string{"User", "Order"}, Namespaces: []string{""},
		OutputURLPrefix:   "gs://example-backups/daily",
		EntitiesCompleted: 8512344, EntitiesEstimated: 21898182,
		BytesCompleted: 4811250312, BytesEstimated: 12395423718,
		StartTime: ts("2026-11-23T03:00:04.837Z"),
	}
}

func doneIn(op poller.Operation, state poller.State, end string) poller.Operation {
	op.Done, op.State, op.EndTime = true, state, ts(end)
	return op
}

// field is one expected attachment field; the Operation and the output are
// the long ones, everything else is short.
type field struct{ title, value string }

type reportCase struct {
	name   string
	report poller.Report
	title  string
	color  string
	fields []field
	// notes are the expected note lines as plain text ("Label: text").
	notes []string
	// slackText is the expected attachment text (Slack mrkdwn).
	slackText string
}

func reportCases() []reportCase {
	return []reportCase{
		{
			name:   "success",
			report: poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful(), Polls: 53},
			title:  "Datastore export succeeded",
			color:  "#2eb886",
			fields: []field{
				{"Project", "example-proj"},
				{"Trigger", "cron"},
				{"Operation", successName},
				{"State", "SUCCESSFUL"},
				{"Duration", "53m6s"},
				{"Started", "2026-11-23 12:00:04 JST"},
				{"Ended", "2026-11-23 12:53:11 JST"},
				{"Entities exported", "21,933,027 of 21,898,182"},
				{"Bytes exported", "11.6 GiB (12,421,772,610 bytes)"},
				{"Kinds", "User, Order"},
				{"Namespaces", "(default)"},
				{"Output URL", outputURL},
			},
			notes:     []string{"Restore: gcloud datastore import " + outputURL},
			slackText: "*Restore:* `gcloud datastore import " + outputURL + "`",
		},
		{
			name:   "failure",
			report: poller.Report{Outcome: poller.OutcomeFailure, Operation: failed(), Polls: 3},
			title:  "Datastore export failed",
			color:  "#d40e0d",
			fields: []field{
				{"Project", "example-proj"},
				{"Trigger", "—"},
				{"Operation", failedName},
				{"State", "FAILED"},
				{"Duration", "2m35s"},
				{"Started", "2026-11-23 12:00:04 JST"},
				{"Ended", "2026-11-23 12:02:40 JST"},
				{"Entities exported", "0 of 21,898,182"},
				{"Bytes exported", "0 bytes"},
				{"Kinds", "all"},
				{"Namespaces", "all"},
				{"Output prefix", "gs://example-backups/daily"},
			},
			notes: []string{
				"Error: " + permission + " (code 7 PERMISSION_DENIED)",
				"Fix: " + "gcloud storage buckets add-iam-policy-binding gs://example-backups --member=serviceAccount:service-123456789@gcp-sa-datastore.iam.gserviceaccount.com --role=roles/storage.objectAdmin",
				"Details: gcloud datastore operations describe " + failedName,
			},
			slackText: "*Error:* " + permission + " (code 7 PERMISSION_DENIED)\n" +
				"*Fix:* `" + "gcloud storage buckets add-iam-policy-binding gs://example-backups --member=serviceAccount:service-123456789@gcp-sa-datastore.iam.gserviceaccount.com --role=roles/storage.objectAdmin" + "`\n" +
				"*Details:* `gcloud datastore operations describe " + failedName + "`",
		},
		{
			name:   "cancelled",
			report: poller.Report{Outcome: poller.OutcomeFailure, Operation: cancelled(), Polls: 12},
			title:  "Datastore export failed",
			color:  "#d40e0d",
			fields: []field{
				{"Project", "example-proj"},
				{"Trigger", "—"},
				{"Operation", cancelledName},
				{"State", "CANCELLED"},
				{"Duration", "11m48s"},
				{"Started", "2026-11-23 12:00:04 JST"},
				{"Ended", "2026-11-23 12:11:52 JST"},
				{"Entities exported", "1,203,344"},
				{"Bytes exported", "582.9 MiB (611,250,312 bytes)"},
				{"Kinds", "all"},
				{"Namespaces", "all"},
				{"Output prefix", "gs://example-backups/daily"},
			},
			notes: []string{
				"Error: The operation was cancelled. (code 1 CANCELLED)",
				"Details: gcloud datastore operations describe " + cancelledName,
			},
			slackText: "*Error:* The operation was cancelled. (code 1 CANCELLED)\n" +
				"*Details:* `gcloud datastore operations describe " + cancelledName + "`",
		},
		{
			name: "unexpected state",
			report: poller.Report{
				Outcome:   poller.OutcomeUnexpected,
				Operation: doneIn(running(), poller.StateFinalizing, "2026-11-23T03:40:00.100Z"),
				Polls:     40,
			},
			title: "Datastore export ended in unexpected state FINALIZING",
			color: "#daa038",
			fields: []field{
				{"Project", "example-proj"},
				{"Trigger", "cron"},
				{"Operation", successName},
				{"State", "FINALIZING"},
				{"Duration", "39m55s"},
				{"Started", "2026-11-23 12:00:04 JST"},
				{"Ended", "2026-11-23 12:40:00 JST"},
				{"Entities exported", "8,512,344 of 21,898,182"},
				{"Bytes exported", "4.5 GiB (4,811,250,312 bytes)"},
				{"Kinds", "User, Order"},
				{"Namespaces", "(default)"},
				{"Output prefix", "gs://example-backups/daily"},
			},
			notes:     []string{"Details: gcloud datastore operations describe " + successName},
			slackText: "*Details:* `gcloud datastore operations describe " + successName + "`",
		},
		{
			name:   "timeout",
			report: poller.Report{Outcome: poller.OutcomeTimeout, Operation: running(), Polls: 60},
			title:  "Datastore export still running after 60 polls",
			color:  "#daa038",
			fields: []field{
				{"Project", "example-proj"},
				{"Trigger", "cron"},
				{"Operation", successName},
				{"State", "PROCESSING"},
				{"Duration", "—"},
				{"Started", "2026-11-23 12:00:04 JST"},
				{"Ended", "—"},
				{"Entities exported", "8,512,344 of 21,898,182"},
				{"Bytes exported", "4.5 GiB (4,811,250,312 bytes)"},
				{"Kinds", "User, Order"},
				{"Namespaces", "(default)"},
				{"Output prefix", "gs://example-backups/daily"},
			},
			notes:     []string{"Details: gcloud datastore operations describe " + successName},
			slackText: "*Details:* `gcloud datastore operations describe " + successName + "`",
		},
		{
			name: "start error",
			report: poller.Report{
				Operation: poller.Operation{
					Project: "example-proj", Trigger: poller.TriggerManual,
					Kinds: []string{"User"}, Namespaces: []string{"", "tenant-a"},
					OutputURLPrefix: "gs://example-backups/daily",
				},
				StartError: startError,
			},
			title: "Datastore export could not be started",
			color: "#d40e0d",
			fields: []field{
				{"Project", "example-proj"},
				{"Trigger", "manual"},
				{"Operation", "—"},
				{"State", "—"},
				{"Duration", "—"},
				{"Started", "—"},
				{"Ended", "—"},
				{"Entities exported", "0"},
				{"Bytes exported", "0 bytes"},
				{"Kinds", "User"},
				{"Namespaces", "(default), tenant-a"},
				{"Output prefix", "gs://example-backups/daily"},
			},
			notes:     []string{"Error: " + startError},
			slackText: "*Error:* " + startError,
		},
	}
}

func tokyo(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatalf("load Asia/Tokyo: %v", err)
	}
	return loc
}

// checkAttachment compares the one attachment Slack received with tc.
func checkAttachment(t *testing.T, got []slack.Attachment, tc reportCase) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("got %d attachments; want 1", len(got))
	}
	a := got[0]
	if got, want := a.Title, tc.title; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
	if got, want := a.Color, tc.color; got != want {
		t.Errorf("color = %q; want %q", got, want)
	}
	if got, want := len(a.Fields), len(tc.fields); got != want {
		t.Fatalf("got %d fields %+v; want %d", got, a.Fields, want)
	}
	for i, want := range tc.fields {
		f := a.Fields[i]
		if f.Title != want.title || f.Value != want.value {
			t.Errorf("field %d = %q: %q; want %q: %q", i, f.Title, f.Value, want.title, want.value)
		}
		long := want.title == "Operation" || strings.HasPrefix(want.title, "Output")
		if got, want := f.Short, !long; got != want {
			t.Errorf("field %q short = %v; want %v", f.Title, got, want)
		}
	}
	if got, want := a.Text, tc.slackText; got != want {
		t.Errorf("text = %q; want %q", got, want)
	}
	if got, want := strings.Join(a.MarkdownIn, ","), "text"; got != want {
		t.Errorf("mrkdwn_in = %q; want %q", got, want)
	}
	if !strings.HasPrefix(a.Fallback, tc.title) {
		t.Errorf("fallback = %q; want it to start with %q", a.Fallback, tc.title)
	}
}

func TestSlackBot(t *testing.T) {
	loc := tokyo(t)
	for _, tc := range reportCases() {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			fake.SetChannels(channel)
			// The trailing slash is left off on purpose: the notifier must add it.
			n, err := notifier.NewSlackBot(token, channel, loc,
				notifier.WithAPIURL(strings.TrimSuffix(fake.URL(), "/")),
				notifier.WithHTTPClient(fake.Client()))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(t.Context(), tc.report); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			msgs := fake.Messages()
			if got, want := len(msgs), 1; got != want {
				t.Fatalf("Slack got %d messages; want %d", got, want)
			}
			m := msgs[0]
			if got, want := m.Method, "chat.postMessage"; got != want {
				t.Errorf("method = %q; want %q", got, want)
			}
			if got, want := m.Token, token; got != want {
				t.Errorf("token = %q; want %q", got, want)
			}
			if got, want := m.Channel, channel; got != want {
				t.Errorf("channel = %q; want %q", got, want)
			}
			if got, want := m.Text, tc.title+" (example-proj)"; got != want {
				t.Errorf("text = %q; want %q", got, want)
			}
			checkAttachment(t, m.Attachments, tc)
		})
	}
}

func TestSlackWebhook(t *testing.T) {
	loc := tokyo(t)
	for _, tc := range reportCases() {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			n, err := notifier.NewSlackWebhook(fake.WebhookURL(), loc, notifier.WithHTTPClient(fake.Client()))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(t.Context(), tc.report); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			msgs := fake.Messages()
			if got, want := len(msgs), 1; got != want {
				t.Fatalf("Slack got %d messages; want %d", got, want)
			}
			m := msgs[0]
			if got, want := m.Method, "webhook"; got != want {
				t.Errorf("method = %q; want %q", got, want)
			}
			if got, want := m.Text, tc.title+" (example-proj)"; got != want {
				t.Errorf("text = %q; want %q", got, want)
			}
			checkAttachment(t, m.Attachments, tc)
		})
	}
}

func TestText(t *testing.T) {
	loc := tokyo(t)
	for _, tc := range reportCases() {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := notifier.NewText(&b, loc).Notify(t.Context(), tc.report); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			out := b.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if got, want := lines[0], tc.title; got != want {
				t.Errorf("first line = %q; want %q", got, want)
			}
			if got, want := len(lines), 1+len(tc.fields)+len(tc.notes); got != want {
				t.Fatalf("got %d lines; want %d:\n%s", got, want, out)
			}
			// Values start in one column, so the fields read as a table.
			column := -1
			for i, f := range tc.fields {
				line := lines[1+i]
				re := regexp.MustCompile(`^  ` + regexp.QuoteMeta(f.title) + `: +` + regexp.QuoteMeta(f.value) + `$`)
				if !re.MatchString(line) {
					t.Errorf("line %d = %q; want %q: %q", 1+i, line, f.title, f.value)
					continue
				}
				if c := strings.Index(line, f.value); column == -1 {
					column = c
				} else if c != column {
					t.Errorf("line %q: value in column %d; want %d", line, c, column)
				}
			}
			for i, want := range tc.notes {
				if got := lines[1+len(tc.fields)+i]; got != want {
					t.Errorf("note %d = %q; want %q", i, got, want)
				}
			}
		})
	}
}

// TestSlackEscaping checks that text Slack would read as markup (<, >, &)
// is escaped in Slack and shown verbatim on the terminal.
func TestSlackEscaping(t *testing.T) {
	fake := slackfake.New(t, token)
	n, err := notifier.NewSlackBot(token, channel, time.UTC, notifier.WithAPIURL(fake.URL()), notifier.WithHTTPClient(fake.Client()))
	if err != nil {
		t.Fatal(err)
	}
	r := poller.Report{Operation: poller.Operation{Project: "example-proj"}, StartError: "bucket <gs://b> & friends"}
	if err := n.Notify(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || len(msgs[0].Attachments) != 1 {
		t.Fatalf("got %+v; want one message with one attachment", msgs)
	}
	if got, want := msgs[0].Attachments[0].Text, "*Error:* bucket &lt;gs://b&gt; &amp; friends"; got != want {
		t.Errorf("slack text = %q; want %q", got, want)
	}
	var b strings.Builder
	if err := notifier.NewText(&b, time.UTC).Notify(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "\nError: bucket <gs://b> & friends\n"; !strings.HasSuffix(got, want) {
		t.Errorf("text output = %q; want it to end with %q", got, want)
	}
}

func TestSlackErrors(t *testing.T) {
	report := poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful()}
	tests := []struct {
		name    string
		webhook bool
		// setup breaks the fake; it returns the URL to post to when it
		// differs from the fake's own.
		setup func(fake *slackfake.Server) string
		token string
		// want is in the error message; check tests its type.
		want  string
		check func(t *testing.T, err error)
	}{
		{
			name:  "bot with a wrong token",
			token: "xoxb-1111111111-2222222222-WrOnGtOkEn",
			want:  "invalid_auth",
			check: func(t *testing.T, err error) {
				var slackErr slack.SlackErrorResponse
				if !errors.As(err, &slackErr) || slackErr.Err != "invalid_auth" {
					t.Errorf("error %v is not Slack's invalid_auth", err)
				}
			},
		},
		{
			name:  "bot posting to an unknown channel",
			setup: func(fake *slackfake.Server) string { fake.SetChannels("#elsewhere"); return "" },
			want:  "post report to slack channel #backups: channel_not_found",
		},
		{
			name:  "bot answered with 500",
			setup: func(fake *slackfake.Server) string { fake.FailNext(3, 500, 0); return "" },
			want:  "500",
			check: func(t *testing.T, err error) {
				var status slack.StatusCodeError
				if !errors.As(err, &status) || status.Code != 500 {
					t.Errorf("error %v is not a StatusCodeError 500", err)
				}
			},
		},
		{
			name:  "bot rate limited",
			setup: func(fake *slackfake.Server) string { fake.FailNext(3, 429, 7*time.Second); return "" },
			want:  "retry after 7s",
			check: func(t *testing.T, err error) {
				var rate *slack.RateLimitedError
				if !errors.As(err, &rate) || rate.RetryAfter != 7*time.Second {
					t.Errorf("error %v is not a RateLimitedError of 7s", err)
				}
			},
		},
		{
			name:    "webhook answered with 500",
			webhook: true,
			setup:   func(fake *slackfake.Server) string { fake.FailNext(3, 500, 0); return "" },
			want:    "post report to slack webhook: slack server error: 500 Internal Server Error",
		},
		{
			name:    "webhook that does not exist",
			webhook: true,
			setup:   func(fake *slackfake.Server) string { return fake.WebhookURL() + "x" },
			want:    "404",
		},
		{
			name:    "webhook unreachable",
			webhook: true,
			// net/http quotes the URL in its error: the secret must not follow.
			setup: func(fake *slackfake.Server) string { fake.Close(); return "" },
			want:  `/[redacted]": dial tcp`,
		},
		{
			name:  "bot unreachable",
			setup: func(fake *slackfake.Server) string { fake.Close(); return "" },
			want:  "chat.postMessage",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			hook := fake.WebhookURL()
			if tc.setup != nil {
				if u := tc.setup(fake); u != "" {
					hook = u
				}
			}
			tok := token
			if tc.token != "" {
				tok = tc.token
			}
			// Each failure outlasts the retries, which are recorded, not slept.
			var n *notifier.Slack
			var err error
			fast := fastRetry(&testrig.Sleeps{})
			if tc.webhook {
				n, err = notifier.NewSlackWebhook(hook, time.UTC, notifier.WithHTTPClient(fake.Client()), fast)
			} else {
				n, err = notifier.NewSlackBot(tok, channel, time.UTC, notifier.WithAPIURL(fake.URL()), notifier.WithHTTPClient(fake.Client()), fast)
			}
			if err != nil {
				t.Fatal(err)
			}
			err = n.Notify(t.Context(), report)
			if err == nil {
				t.Fatal("Notify succeeded; want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			secret := hook[strings.Index(hook, "/services/"):]
			for _, s := range []string{tok, hook, secret, strings.TrimPrefix(tok, "xoxb-")} {
				if strings.Contains(msg, s) || strings.Contains(fmt.Sprintf("%+v", err), s) {
					t.Errorf("error %q contains the secret %q", msg, s)
				}
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			if got, want := len(fake.Messages()), 0; got != want {
				t.Errorf("Slack recorded %d messages; want %d", got, want)
			}
		})
	}
}

// fastRetry is the default policy with the waits recorded in s, not slept.
func fastRetry(s *testrig.Sleeps) notifier.Option {
	p := notifier.DefaultRetry()
	p.Sleep = s.Sleep
	return notifier.WithRetry(p)
}

// newNotifier is a bot or webhook notifier on fake with opts.
func newNotifier(t *testing.T, fake *slackfake.Server, webhook bool, opts ...notifier.Option) *notifier.Slack {
	t.Helper()
	opts = append([]notifier.Option{notifier.WithHTTPClient(fake.Client())}, opts...)
	var n *notifier.Slack
	var err error
	if webhook {
		n, err = notifier.NewSlackWebhook(fake.WebhookURL(), time.UTC, opts...)
	} else {
		n, err = notifier.NewSlackBot(token, channel, time.UTC, append(opts, notifier.WithAPIURL(fake.URL()))...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSlackRetries(t *testing.T) {
	report := poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful()}
	tests := []struct {
		name     string
		failures int
		status   int
		after    time.Duration
		// ok: Notify succeeds; waits: the waits between tries.
		ok    bool
		waits int
		// minWait is the least the first wait may be (a Retry-After).
		minWait time.Duration
		check   func(t *testing.T, err error)
	}{
		{name: "429 with Retry-After, twice", failures: 2, status: 429, after: 3 * time.Second, ok: true, waits: 2, minWait: 3 * time.Second},
		{name: "429 without Retry-After", failures: 1, status: 429, ok: true, waits: 1},
		{name: "500, twice", failures: 2, status: 500, ok: true, waits: 2},
		{name: "503, then given up", failures: 3, status: 503, waits: 2, check: func(t *testing.T, err error) {
			var status slack.StatusCodeError
			if !errors.As(err, &status) || status.Code != 503 {
				t.Errorf("error %v is not a StatusCodeError 503", err)
			}
			if !strings.Contains(err.Error(), "gave up after 3 attempts") {
				t.Errorf("error %q does not say it gave up after 3 attempts", err)
			}
		}},
		{name: "404 is final", failures: 1, status: 404, waits: 0},
	}
	for _, tc := range tests {
		for _, webhook := range []bool{false, true} {
			kind := map[bool]string{false: "bot", true: "webhook"}[webhook]
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				fake := slackfake.New(t, token)
				fake.FailNext(tc.failures, tc.status, tc.after)
				var s testrig.Sleeps
				n := newNotifier(t, fake, webhook, fastRetry(&s))
				err := n.Notify(t.Context(), report)
				if tc.ok != (err == nil) {
					t.Fatalf("Notify = %v; want success %v", err, tc.ok)
				}
				msgs := 0
				if tc.ok {
					msgs = 1
				}
				if got, want := len(fake.Messages()), msgs; got != want {
					t.Errorf("Slack recorded %d messages; want %d", got, want)
				}
				if got, want := len(s.Waits()), tc.waits; got != want {
					t.Errorf("waits = %v; want %d of them", s.Waits(), want)
				}
				if w := s.Waits(); len(w) > 0 && w[0] < tc.minWait {
					t.Errorf("first wait = %v; want at least the Retry-After %v", w[0], tc.minWait)
				}
				if tc.check != nil {
					tc.check(t, err)
				}
				if err != nil {
					if strings.Contains(fmt.Sprintf("%+v", err), fake.WebhookURL()) || strings.Contains(err.Error(), token) {
						t.Errorf("error %q contains a secret", err)
					}
					// The report a caller tries again later goes through.
					if err := n.Notify(t.Context(), report); err != nil {
						t.Fatalf("Notify once Slack recovered: %v", err)
					}
					if got, want := len(fake.Messages()), 1; got != want {
						t.Errorf("Slack recorded %d messages after recovering; want %d", got, want)
					}
				}
			})
		}
	}
}

func TestSlackNoRetryOnRefusal(t *testing.T) {
	fake := slackfake.New(t, token)
	fake.SetChannels("#elsewhere")
	var s testrig.Sleeps
	bad, err := notifier.NewSlackBot("xoxb-1111111111-2222222222-WrOnGtOkEn", channel, time.UTC,
		notifier.WithAPIURL(fake.URL()), notifier.WithHTTPClient(fake.Client()), fastRetry(&s))
	if err != nil {
		t.Fatal(err)
	}
	report := poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful()}
	for _, tc := range []struct {
		n    *notifier.Slack
		want string
	}{
		{bad, "invalid_auth"},
		{newNotifier(t, fake, false, fastRetry(&s)), "channel_not_found"},
	} {
		err := tc.n.Notify(t.Context(), report)
		var slackErr slack.SlackErrorResponse
		if !errors.As(err, &slackErr) || slackErr.Err != tc.want {
			t.Errorf("Notify = %v; want Slack's %s", err, tc.want)
		}
	}
	if got := s.Waits(); len(got) != 0 {
		t.Errorf("waits = %v; want none: a refusal is final", got)
	}
}

// TestSlackRetryWithinDeadline checks that a Retry-After longer than the
// caller's deadline ends Notify at once, with the rate limit in the error.
func TestSlackRetryWithinDeadline(t *testing.T) {
	for _, webhook := range []bool{false, true} {
		fake := slackfake.New(t, token)
		fake.FailNext(1, 429, 30*time.Second)
		n := newNotifier(t, fake, webhook) // the real policy: a real wait if any
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		start := time.Now()
		err := n.Notify(ctx, poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful()})
		cancel()
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Errorf("webhook %v: Notify took %v; want it to give up at once", webhook, elapsed)
		}
		var rate *slack.RateLimitedError
		if !errors.As(err, &rate) || rate.RetryAfter != 30*time.Second {
			t.Errorf("webhook %v: Notify = %v; want a RateLimitedError of 30s", webhook, err)
		}
		if got := len(fake.Messages()); got != 0 {
			t.Errorf("webhook %v: Slack recorded %d messages; want 0", webhook, got)
		}
	}
}

func TestSlackCanceledContext(t *testing.T) {
	fake := slackfake.New(t, token)
	n, err := notifier.NewSlackWebhook(fake.WebhookURL(), time.UTC, notifier.WithHTTPClient(fake.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = n.Notify(ctx, poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Notify with a canceled context = %v; want context.Canceled", err)
	}
	if err != nil && strings.Contains(err.Error(), fake.WebhookURL()) {
		t.Errorf("error %q contains the webhook URL", err)
	}
}

func TestNewSlackRejectsBadConfig(t *testing.T) {
	const badHook = "hooks.slack.com/services/T0/B0/NoSchemeSecret"
	tests := []struct {
		name string
		new  func() (*notifier.Slack, error)
	}{
		{"bot without token", func() (*notifier.Slack, error) { return notifier.NewSlackBot("", channel, nil) }},
		{"bot without channel", func() (*notifier.Slack, error) { return notifier.NewSlackBot(token, "", nil) }},
		{"bot with a relative API URL", func() (*notifier.Slack, error) {
			return notifier.NewSlackBot(token, channel, nil, notifier.WithAPIURL("slack.test/api"))
		}},
		{"webhook without URL", func() (*notifier.Slack, error) { return notifier.NewSlackWebhook("", nil) }},
		{"webhook without scheme", func() (*notifier.Slack, error) { return notifier.NewSlackWebhook(badHook, nil) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := tc.new()
			if err == nil {
				t.Fatalf("got %v; want an error", n)
			}
			if strings.Contains(err.Error(), "NoSchemeSecret") || strings.Contains(err.Error(), token) {
				t.Errorf("error %q contains a secret", err)
			}
		})
	}
}
