package notifier_test

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/slackutilsx"

	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// hugeError is an error message of n characters that Slack's escaping
// lengthens (each & is sent as &amp;, each < as &lt;), with a multi-byte
// character so bytes and characters differ.
func hugeError(n int) string {
	s := strings.Repeat("bucket <gs://b> & friends: permission denied, é; ", n/48+1)
	return string([]rune(s)[:n])
}

// kinds is n kind names.
func kinds(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strings.Repeat("x", i%7) + string(rune('A'+i%26))
	}
	return out
}

// longURL is an output URL of about n characters.
func longURL(n int) string {
	return "gs://example-backups/" + strings.Repeat("d", n-len("gs://example-backups/")-len("/x.overall_export_metadata")) + "/x.overall_export_metadata"
}

type limitCase struct {
	name   string
	report poller.Report
}

// limitCases are reports whose text outgrows Slack's limits unless cut.
func limitCases() []limitCase {
	longErr := failed()
	longErr.ErrorMessage = hugeError(10000)
	many := successful()
	many.Kinds, many.Namespaces = kinds("OrderLineItemHistory", 100), kinds("tenant-europe-west-", 100)
	url := successful()
	url.OutputURL = longURL(3000)
	timedOut := running()
	timedOut.Kinds, timedOut.Namespaces = kinds("OrderLineItemHistory", 100), kinds("tenant-europe-west-", 100)
	timedOut.ErrorMessage, timedOut.ErrorCode = hugeError(10000), 14
	return []limitCase{
		{"10,000-character error", poller.Report{Outcome: poller.OutcomeFailure, Operation: longErr, Polls: 3}},
		{"100 kinds and 100 namespaces", poller.Report{Outcome: poller.OutcomeSuccess, Operation: many, Polls: 53}},
		{"long output URL", poller.Report{Outcome: poller.OutcomeSuccess, Operation: url, Polls: 53}},
		{"timeout with long errors and lists", poller.Report{Outcome: poller.OutcomeTimeout, Operation: timedOut, Polls: 60, LastError: hugeError(10000)}},
		{"refused start with a long error", poller.Report{Operation: poller.Operation{Project: "example-proj"}, StartError: hugeError(10000)}},
	}
}

// command is the command r's report must show whole, as Slack receives it.
func command(t *testing.T, r poller.Report) (string, bool) {
	t.Helper()
	c, ok := present.NextCommand(r)
	return slackutilsx.EscapeMessage(c.Text), ok
}

// checkMessage fails t unless m shows cmd whole: in code in the
// attachment's text, and in its fallback. The fake checks the limits.
func checkMessage(t *testing.T, m slackfake.Message, cmd string) {
	t.Helper()
	if len(m.Attachments) != 1 {
		t.Fatalf("message has %d attachments; want 1", len(m.Attachments))
	}
	a := m.Attachments[0]
	if !strings.Contains(a.Text, "`"+cmd+"`") {
		t.Errorf("attachment text (%d characters) lacks the whole command %.80q…; ends %q",
			len([]rune(a.Text)), cmd, a.Text[max(0, len(a.Text)-120):])
	}
	if !strings.Contains(a.Fallback, cmd) {
		t.Errorf("fallback (%d characters) lacks the whole command %.80q…", len([]rune(a.Fallback)), cmd)
	}
}

// TestSlackLimits posts each long report as a bot and through a webhook:
// the fake fails the test on any part over Slack's limits, and the command
// to run next must be there whole.
func TestSlackLimits(t *testing.T) {
	for _, tc := range limitCases() {
		for _, webhook := range []bool{false, true} {
			name := tc.name + "/bot"
			if webhook {
				name = tc.name + "/webhook"
			}
			t.Run(name, func(t *testing.T) {
				fake := slackfake.New(t, token)
				n := newNotifier(t, fake, webhook)
				if err := n.Notify(t.Context(), tc.report); err != nil {
					t.Fatalf("Notify: %v", err)
				}
				m := fake.Only(t)
				if cmd, ok := command(t, tc.report); ok {
					checkMessage(t, m, cmd)
				}
				checkCut(t, m)
			})
		}
	}
}

// checkCut fails t when a long text in m was dropped without saying so.
func checkCut(t *testing.T, m slackfake.Message) {
	t.Helper()
	a := m.Attachments[0]
	all := a.Text
	for _, f := range a.Fields {
		all += "\n" + f.Value
	}
	if strings.Contains(all, "<") {
		t.Errorf("unescaped < in %q", all)
	}
	for _, f := range a.Fields {
		if f.Title == "Kinds" || f.Title == "Namespaces" {
			if strings.Count(f.Value, ",") > present.ListMaxValues {
				t.Errorf("%s = %q; want it summarised", f.Title, f.Value)
			}
		}
	}
	if strings.Contains(a.Text, "permission denied") && !strings.Contains(a.Text, "characters in all)") {
		t.Errorf("long error in %q is not said to be cut", a.Text)
	}
}

// TestSlackProgressLimits follows an export with long lists and a long
// failed poll through the start message, a progress update, and the report
// in place with its thread reply: every message within Slack's limits, and
// each with its command whole.
func TestSlackProgressLimits(t *testing.T) {
	for _, tc := range limitCases() {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			fake.SetChannels(channel)
			now := running().StartTime.Add(time.Minute)
			n := progressBot(t, fake, time.UTC, &now, &testrig.Sleeps{})
			op := starting()
			op.Kinds, op.Namespaces = tc.report.Operation.Kinds, tc.report.Operation.Namespaces
			describe := slackutilsx.EscapeMessage(present.DescribeCommand(op.Name))
			ref, err := n.Started(t.Context(), poller.Report{Operation: op, LastError: hugeError(10000)})
			if err != nil {
				t.Fatalf("Started: %v", err)
			}
			m, _ := fake.Message(ref.TS)
			checkMessage(t, m, describe)
			run := running()
			run.Kinds, run.Namespaces = op.Kinds, op.Namespaces
			if err := n.Progress(t.Context(), ref, poller.Report{Operation: run, Polls: 5, LastError: hugeError(10000)}); err != nil {
				t.Fatalf("Progress: %v", err)
			}
			m, _ = fake.Message(ref.TS)
			checkMessage(t, m, describe)

			final := tc.report
			final.Message = ref
			if err := n.Notify(t.Context(), final); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			top, replies := split(fake.Messages())
			if len(top) != 1 || len(replies) != 1 {
				t.Fatalf("got %d messages and %d replies; want 1 and 1", len(top), len(replies))
			}
			cmd, ok := command(t, tc.report)
			if !ok {
				return
			}
			checkMessage(t, top[0], cmd)
			if r := replies[0].Text; !strings.HasSuffix(r, "\n`"+cmd+"`") {
				t.Errorf("thread reply (%d characters) does not end with the whole command %.80q…: ends %q",
					len([]rune(r)), cmd, r[max(0, len(r)-120):])
			}
		})
	}
}

// TestTextLimits checks the plain-text report says the same as Slack: the
// error cut with its length, the lists summarised, the command whole.
func TestTextReportLimits(t *testing.T) {
	for _, tc := range limitCases() {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := notifier.NewText(&b, time.UTC).Notify(t.Context(), tc.report); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if c, ok := present.NextCommand(tc.report); ok && !strings.Contains(out, ": "+c.Text+"\n") {
				t.Errorf("text lacks the whole command line %.80q…", c.Text)
			}
			for _, line := range strings.Split(out, "\n") {
				if n := len([]rune(line)); n > present.MaxDetail+100 && !strings.Contains(line, "gs://") {
					t.Errorf("line of %d characters: %.80q…", n, line)
				}
			}
			if strings.Contains(out, "permission denied") && !strings.Contains(out, " … (cut, 10,000 characters in all)") {
				t.Errorf("long error not said to be cut:\n%.400s", out)
			}
		})
	}
}
