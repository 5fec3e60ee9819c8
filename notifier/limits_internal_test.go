package notifier

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// layouts renders r every way Slack is sent it: the report (bot message
// and webhook alike), the start and progress messages, and the thread
// reply, each as the fake would receive it.
func layouts(r poller.Report) map[string]slackfake.Message {
	loc, now := time.UTC, r.Operation.StartTime.Add(time.Hour)
	out := make(map[string]slackfake.Message)
	for name, m := range map[string]present.Message{
		"report":   present.Format(r, loc),
		"started":  present.FormatStarted(r, loc),
		"progress": present.FormatProgress(r, loc, now),
	} {
		out[name] = slackfake.Message{Text: summary(m, r), Attachments: []slack.Attachment{attachment(m)}}
	}
	out["reply"] = slackfake.Message{Text: replyText(present.Format(r, loc), r, loc)}
	return out
}

// checkLayouts fails t when a layout of r is over Slack's limits, or lacks
// its command while the command is short enough to fit (any command made of
// a valid operation name or Cloud Storage URL is).
func checkLayouts(t *testing.T, r poller.Report) {
	t.Helper()
	for name, m := range layouts(r) {
		if v := slackfake.Check(m); len(v) > 0 {
			t.Fatalf("%s over Slack's limits: %v", name, v)
		}
		c, ok := present.NextCommand(r)
		if name == "started" || name == "progress" {
			c, ok = present.Command{Text: present.DescribeCommand(r.Operation.Name)}, r.Operation.Name != ""
		}
		cmd := "`" + escape(c.Text) + "`"
		if !ok || width(c.Text) > 2000 {
			continue
		}
		if name == "reply" {
			if !strings.HasSuffix(m.Text, "\n"+cmd) {
				t.Fatalf("reply lacks the whole command %.60q…", cmd)
			}
			continue
		}
		if a := m.Attachments[0]; !strings.Contains(a.Text, cmd) || !strings.Contains(a.Fallback, escape(c.Text)) {
			t.Fatalf("%s lacks the whole command %.60q…; its text ends %q", name, cmd, a.Text[max(0, len(a.Text)-200):])
		}
	}
}

// randomText is n characters drawn from ones Slack's escaping lengthens,
// multi-byte ones, newlines and plain letters.
func randomText(rng *rand.Rand, n int) string {
	const alphabet = "ab &<>é€😀\n"
	runes := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(runes[rng.IntN(len(runes))])
	}
	return b.String()
}

// TestSlackLimitsRandom renders reports of random lengths in every layout.
func TestSlackLimitsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	// The poller reports only ended exports: OutcomeNone is never posted.
	outcomes := []poller.Outcome{poller.OutcomeSuccess, poller.OutcomeFailure, poller.OutcomeTimeout, poller.OutcomeUnexpected}
	length := func() int { return []int{0, 1, 100, 2000, 5000, 12000}[rng.IntN(6)] + rng.IntN(50) }
	for range 300 {
		op := poller.Operation{
			Name:         "projects/p/operations/" + randomText(rng, rng.IntN(300)),
			Project:      "p",
			Done:         rng.IntN(2) == 0,
			State:        poller.State(randomText(rng, rng.IntN(200))),
			ErrorCode:    rng.IntN(17),
			ErrorMessage: randomText(rng, length()),
			OutputURL:    "gs://b/" + randomText(rng, length()),
			Kinds:        strings.Fields(randomText(rng, length())),
			Namespaces:   strings.Fields(randomText(rng, length())),
			StartTime:    time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC),
		}
		op.OutputURLPrefix = op.OutputURL
		r := poller.Report{Outcome: outcomes[rng.IntN(len(outcomes))], Operation: op, LastError: randomText(rng, length())}
		if rng.IntN(5) == 0 {
			r.StartError = randomText(rng, length())
		}
		checkLayouts(t, r)
	}
}

// FuzzSlackLimits is TestSlackLimitsRandom's check on inputs the fuzzer
// chooses: go test -fuzz FuzzSlackLimits ./notifier/.
func FuzzSlackLimits(f *testing.F) {
	f.Add(strings.Repeat("a<b & c> ", 1200), "gs://b/x.overall_export_metadata", "User Order", 0)
	f.Add("", strings.Repeat("gs://&", 900), strings.Repeat("Kind ", 500), 1)
	f.Add("😀", "", "", 2)
	f.Fuzz(func(t *testing.T, msg, url, kinds string, outcome int) {
		outcomes := []poller.Outcome{poller.OutcomeSuccess, poller.OutcomeFailure, poller.OutcomeTimeout}
		op := poller.Operation{
			Name: "projects/p/operations/" + msg[:min(len(msg), 80)], Project: "p", Done: true,
			ErrorCode: 7, ErrorMessage: msg, OutputURL: url, OutputURLPrefix: url,
			Kinds: strings.Fields(kinds), Namespaces: strings.Fields(kinds),
		}
		checkLayouts(t, poller.Report{Outcome: outcomes[(outcome%3+3)%3], Operation: op, LastError: msg})
	})
}

// TestSlackBackupLimitsRandom renders backup notices whose names, ids and
// states from outside are random text of random lengths, of every kind:
// the report and its thread reply within Slack's limits, and the command a
// notice is about whole whenever there is one.
func TestSlackBackupLimitsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	kinds := []poller.NoticeKind{poller.NoticeReady, poller.NoticeNoSchedule, poller.NoticeMissing, poller.NoticeNotAvailable,
		poller.NoticeStuck, poller.NoticeShortRetention, poller.NoticeShrank, poller.NoticeWatchFailing, poller.NoticeKind(randomText(rng, 300))}
	length := func() int { return []int{0, 1, 100, 2000, 12000}[rng.IntN(5)] + rng.IntN(50) }
	backup := func() poller.Backup {
		name := "projects/shop-prod/locations/nam5/backups/" + randomText(rng, length())
		if rng.IntN(2) == 0 {
			name = "projects/shop-prod/locations/nam5/backups/cf9f748a-7980-4703-b1a1-d1ffff591db0"
		}
		return poller.Backup{Name: name, State: poller.BackupState(randomText(rng, rng.IntN(100))),
			SnapshotTime: time.Date(2026, 12, 1, 2, 13, 0, 0, time.UTC), Documents: rng.Int64(), Bytes: rng.Int64()}
	}
	for range 300 {
		n := poller.BackupNotice{
			Kind: kinds[rng.IntN(len(kinds))], Target: randomText(rng, length()), Project: "shop-prod",
			Database: randomText(rng, length()), Backup: backup(), Previous: backup(),
			Schedule: poller.BackupSchedule{Name: randomText(rng, length()), Recurrence: poller.Recurrence(randomText(rng, rng.IntN(50))),
				Weekday: randomText(rng, length()), Retention: time.Duration(rng.Int64())},
			Expected: time.Duration(rng.Int64()), Shrink: rng.Float64(), Error: randomText(rng, length()),
			Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(-time.Duration(rng.Int64N(1 << 50))),
		}
		if rng.IntN(2) == 0 {
			n.Database = "analytics"
		}
		r := poller.Report{Backup: &n}
		m := present.FormatAt(r, time.UTC, time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC))
		msgs := map[string]slackfake.Message{
			"report": {Text: summary(m, r), Attachments: []slack.Attachment{attachment(m)}},
			"reply":  {Text: replyText(m, r, time.UTC)},
		}
		for name, sm := range msgs {
			if v := slackfake.Check(sm); len(v) > 0 {
				t.Fatalf("%s of a %.20q notice over Slack's limits: %v", name, n.Kind, v)
			}
		}
		if c, ok := present.NextCommand(r); ok {
			cmd := "`" + escape(c.Text) + "`"
			if !strings.Contains(msgs["report"].Attachments[0].Text, cmd) || !strings.HasSuffix(msgs["reply"].Text, "\n"+cmd) {
				t.Fatalf("%.20q notice lacks its whole command %.80q", n.Kind, c.Text)
			}
		}
	}
}
