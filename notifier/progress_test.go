package notifier_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// starting is the snapshot the start call returns: no progress, no estimates.
func starting() poller.Operation {
	op := running()
	op.State = poller.StateInitializing
	op.EntitiesCompleted, op.EntitiesEstimated, op.BytesCompleted, op.BytesEstimated = 0, 0, 0, 0
	return op
}

// progressBot is a bot notifier on fake whose clock reads *now, with the
// retries' waits recorded in waits instead of slept.
func progressBot(t *testing.T, fake *slackfake.Server, loc *time.Location, now *time.Time, waits *testrig.Sleeps) *notifier.Slack {
	t.Helper()
	n, err := notifier.NewSlackBot(token, channel, loc,
		notifier.WithAPIURL(fake.URL()), notifier.WithHTTPClient(fake.Client()),
		notifier.WithClock(func() time.Time { return *now }), fastRetry(waits))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// split separates the fake's messages into those of the channel and the
// thread replies.
func split(msgs []slackfake.Message) (top, replies []slackfake.Message) {
	for _, m := range msgs {
		if m.ThreadTS == "" {
			top = append(top, m)
		} else {
			replies = append(replies, m)
		}
	}
	return top, replies
}

// fieldsOf maps an attachment's field titles to their values.
func fieldsOf(t *testing.T, m slackfake.Message) map[string]string {
	t.Helper()
	if len(m.Attachments) != 1 {
		t.Fatalf("message %s has %d attachments; want 1", m.TS, len(m.Attachments))
	}
	f := make(map[string]string)
	for _, a := range m.Attachments[0].Fields {
		f[a.Title] = a.Value
	}
	return f
}

// TestSlackProgressSequence follows one export through the real client and
// the fake: Started, two Progress updates, and the report, which must leave
// one message in the channel that reads as the report, its earlier versions
// the progress, and one reply in its thread.
func TestSlackProgressSequence(t *testing.T) {
	loc := tokyo(t)
	fake := slackfake.New(t, token)
	fake.SetChannels(channel)
	now := running().StartTime.Add(2 * time.Second)
	n := progressBot(t, fake, loc, &now, &testrig.Sleeps{})
	ctx := t.Context()

	ref, err := n.Started(ctx, poller.Report{Operation: starting()})
	if err != nil {
		t.Fatalf("Started: %v", err)
	}
	if got, want := ref.Channel, slackfake.ChannelID(channel); got != want {
		t.Errorf("ref channel = %q; want the ID Slack answered, %q", got, want)
	}
	if ref.TS == "" {
		t.Fatal("Started returned no TS")
	}
	m, _ := fake.Message(ref.TS)
	if got, want := m.Text, "Datastore export started (example-proj)"; got != want {
		t.Errorf("start text = %q; want %q", got, want)
	}
	if a := m.Attachments; len(a) != 1 || a[0].Title != "Datastore export started" || a[0].Color != present.ColorProgress {
		t.Errorf("start attachment = %+v; want the title %q in %s", a, "Datastore export started", present.ColorProgress)
	}
	if f := fieldsOf(t, m); f["Output prefix"] != "gs://example-backups/daily" || f["Kinds"] != "User, Order" || f["Trigger"] != "cron" {
		t.Errorf("start fields = %v; want the prefix, kinds and trigger", f)
	}

	// Two polls: the second past the estimate, which must not show over 100%.
	now = running().StartTime.Add(12*time.Minute + 30*time.Second)
	if err := n.Progress(ctx, ref, poller.Report{Operation: running(), Polls: 5}); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	m, _ = fake.Message(ref.TS)
	want := map[string]string{
		"State":             "PROCESSING",
		"Elapsed":           "12m30s",
		"Updated":           "2026-11-23 12:12:34 JST",
		"Entities exported": "8,512,344 of ~21,898,182 (38.8%)",
		"Bytes exported":    "4.5 GiB of ~11.5 GiB (38.8%)",
		"Polls":             "5",
	}
	f := fieldsOf(t, m)
	for k, v := range want {
		if f[k] != v {
			t.Errorf("progress field %q = %q; want %q", k, f[k], v)
		}
	}
	if got, want := m.Attachments[0].Title, "Datastore export running"; got != want {
		t.Errorf("progress title = %q; want %q", got, want)
	}
	now = now.Add(40 * time.Minute)
	over := running()
	over.State = poller.StateFinalizing
	over.EntitiesCompleted, over.BytesCompleted = 21933027, 12421772610
	if err := n.Progress(ctx, ref, poller.Report{Operation: over, Polls: 45}); err != nil {
		t.Fatalf("second Progress: %v", err)
	}
	m, _ = fake.Message(ref.TS)
	f = fieldsOf(t, m)
	if got, want := f["Entities exported"], "21,933,027 of ~21,898,182 (100%)"; got != want {
		t.Errorf("entities past the estimate = %q; want %q", got, want)
	}
	if got, want := f["Elapsed"], "52m30s"; got != want {
		t.Errorf("elapsed = %q; want %q", got, want)
	}

	tc := reportCases()[0]
	final := tc.report
	final.Message = ref
	if err := n.Notify(ctx, final); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	top, replies := split(fake.Messages())
	if got, want := len(top), 1; got != want {
		t.Fatalf("channel has %d messages; want %d: %+v", got, want, top)
	}
	m = top[0]
	if m.TS != ref.TS {
		t.Errorf("the channel's message is %s; want the progress message %s", m.TS, ref.TS)
	}
	if got, want := m.Text, tc.title+" (example-proj)"; got != want {
		t.Errorf("final text = %q; want %q", got, want)
	}
	checkAttachment(t, m.Attachments, tc)
	if got, want := m.Updates, 3; got != want {
		t.Errorf("updates = %d; want %d", got, want)
	}
	var titles []string
	for _, v := range m.Versions {
		titles = append(titles, v.Attachments[0].Title)
	}
	if got, want := strings.Join(titles, ", "), "Datastore export started, Datastore export running, Datastore export running"; got != want {
		t.Errorf("earlier versions = %s; want %s", got, want)
	}
	if got, want := fieldsOf(t, m.Versions[1])["Entities exported"], "8,512,344 of ~21,898,182 (38.8%)"; got != want {
		t.Errorf("first update's entities = %q; want %q", got, want)
	}

	if got, want := len(replies), 1; got != want {
		t.Fatalf("got %d thread replies; want %d", got, want)
	}
	r := replies[0]
	if r.ThreadTS != ref.TS || r.ChannelID != ref.Channel || !r.Broadcast {
		t.Errorf("reply in thread %q of %q (broadcast %v); want thread %q of %q, broadcast", r.ThreadTS, r.ChannelID, r.Broadcast, ref.TS, ref.Channel)
	}
	wantReply := "Datastore export succeeded (example-proj) — 21,933,027 entities, 11.6 GiB\n`gcloud datastore import " + outputURL + "`"
	if got := r.Text; got != wantReply {
		t.Errorf("reply = %q; want %q", got, wantReply)
	}
}

// TestSlackNotifyInPlace turns a progress message into each kind of report.
func TestSlackNotifyInPlace(t *testing.T) {
	loc := tokyo(t)
	for _, tc := range reportCases() {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			now := time.Now()
			n := progressBot(t, fake, loc, &now, &testrig.Sleeps{})
			ref, err := n.Started(t.Context(), poller.Report{Operation: tc.report.Operation})
			if err != nil {
				t.Fatal(err)
			}
			r := tc.report
			r.Message = ref
			if err := n.Notify(t.Context(), r); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			top, replies := split(fake.Messages())
			if len(top) != 1 || len(replies) != 1 {
				t.Fatalf("got %d messages and %d replies; want 1 and 1", len(top), len(replies))
			}
			checkAttachment(t, top[0].Attachments, tc)
			if want := tc.title + " (example-proj) — "; !strings.HasPrefix(replies[0].Text, want) {
				t.Errorf("reply = %q; want it to start with %q", replies[0].Text, want)
			}
			// The reply ends with the command to run next, when there is one.
			for _, note := range tc.notes {
				if cmd, ok := strings.CutPrefix(note, "Restore: gcloud"); ok {
					if !strings.HasSuffix(replies[0].Text, "\n`gcloud"+cmd+"`") {
						t.Errorf("reply = %q; want it to end with the restore command", replies[0].Text)
					}
				}
			}
		})
	}
}

// TestSlackNotifyInPlaceRetries checks that failed updates and replies are
// retried, within one Notify and by the caller calling again, without a
// second message in the channel or a second reply.
func TestSlackNotifyInPlaceRetries(t *testing.T) {
	tests := []struct {
		name   string
		method string
		n      int
		status int
		after  time.Duration
		// ok: the first Notify succeeds; waits: how many retry waits it made.
		ok      bool
		waits   int
		minWait time.Duration
		// updated: the message is the report after the first Notify.
		updated bool
	}{
		{name: "reply 429 with Retry-After", method: "chat.postMessage", n: 1, status: 429, after: 3 * time.Second, ok: true, waits: 1, minWait: 3 * time.Second, updated: true},
		{name: "reply fails", method: "chat.postMessage", n: 3, status: 500, waits: 2, updated: true},
		{name: "update 503 twice", method: "chat.update", n: 2, status: 503, ok: true, waits: 2, updated: true},
		{name: "update rate limited", method: "chat.update", n: 3, status: 429, after: time.Second, waits: 2, minWait: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			now := time.Now()
			var waits testrig.Sleeps
			n := progressBot(t, fake, time.UTC, &now, &waits)
			ref, err := n.Started(t.Context(), poller.Report{Operation: starting()})
			if err != nil {
				t.Fatal(err)
			}
			fake.FailNextCall(tc.method, tc.n, tc.status, tc.after)
			report := poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful(), Message: ref}
			err = n.Notify(t.Context(), report)
			if tc.ok != (err == nil) {
				t.Fatalf("Notify = %v; want success %v", err, tc.ok)
			}
			if got := waits.Waits(); len(got) != tc.waits || len(got) > 0 && got[0] < tc.minWait {
				t.Errorf("waits = %v; want %d, the first at least %v", got, tc.waits, tc.minWait)
			}
			m, _ := fake.Message(ref.TS)
			if got := m.Attachments[0].Title == "Datastore export succeeded"; got != tc.updated {
				t.Errorf("message is the report after the first Notify: %v; want %v", got, tc.updated)
			}
			if err != nil {
				if strings.Contains(fmt.Sprintf("%+v", err), token) {
					t.Errorf("error %q contains the token", err)
				}
				var status slack.StatusCodeError
				var rate *slack.RateLimitedError
				if !errors.As(err, &status) && !errors.As(err, &rate) {
					t.Errorf("error %v unwraps to neither Slack's status nor its rate limit", err)
				}
				// The caller tries again later, and that goes through.
				if err := n.Notify(t.Context(), report); err != nil {
					t.Fatalf("Notify once Slack recovered: %v", err)
				}
			}
			top, replies := split(fake.Messages())
			if len(top) != 1 || len(replies) != 1 {
				t.Errorf("got %d messages and %d replies; want 1 and 1", len(top), len(replies))
			}
			if m, _ := fake.Message(ref.TS); m.Attachments[0].Title != "Datastore export succeeded" {
				t.Errorf("final message titled %q; want the report", m.Attachments[0].Title)
			}
		})
	}
}

// TestSlackNotifyMessageGone checks that a progress message that cannot be
// updated any more is replaced by one new message, with no reply.
func TestSlackNotifyMessageGone(t *testing.T) {
	tests := []struct {
		name  string
		setup func(fake *slackfake.Server, ref *poller.MessageRef)
	}{
		{"deleted", func(fake *slackfake.Server, ref *poller.MessageRef) { fake.Delete(ref.TS) }},
		{"unknown", func(fake *slackfake.Server, ref *poller.MessageRef) { ref.TS = "1600000000.000001" }},
		{"not editable", func(fake *slackfake.Server, ref *poller.MessageRef) {
			fake.RefuseNextCall("chat.update", 1, "cant_update_message")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			now := time.Now()
			n := progressBot(t, fake, time.UTC, &now, &testrig.Sleeps{})
			ref, err := n.Started(t.Context(), poller.Report{Operation: starting()})
			if err != nil {
				t.Fatal(err)
			}
			tc.setup(fake, &ref)
			before := len(fake.Messages())
			err = n.Notify(t.Context(), poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful(), Message: ref})
			if err != nil {
				t.Fatalf("Notify: %v", err)
			}
			msgs := fake.Messages()
			if got, want := len(msgs)-before, 1; got != want {
				t.Fatalf("Notify added %d messages; want %d", got, want)
			}
			m := msgs[len(msgs)-1]
			if m.TS == ref.TS || m.ThreadTS != "" || m.Updates != 0 {
				t.Errorf("report = %+v; want a new message of the channel", m)
			}
			if got, want := m.Attachments[0].Title, "Datastore export succeeded"; got != want {
				t.Errorf("report titled %q; want %q", got, want)
			}
		})
	}
}

// TestSlackNotifyInPlaceRefused checks that a refusal that is not about the
// message (a revoked token) is returned, not answered with a second post.
func TestSlackNotifyInPlaceRefused(t *testing.T) {
	fake := slackfake.New(t, token)
	now := time.Now()
	var waits testrig.Sleeps
	n := progressBot(t, fake, time.UTC, &now, &waits)
	ref, err := n.Started(t.Context(), poller.Report{Operation: starting()})
	if err != nil {
		t.Fatal(err)
	}
	fake.RefuseNextCall("chat.update", 1, "token_revoked")
	err = n.Notify(t.Context(), poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful(), Message: ref})
	var slackErr slack.SlackErrorResponse
	if !errors.As(err, &slackErr) || slackErr.Err != "token_revoked" {
		t.Errorf("Notify = %v; want Slack's token_revoked", err)
	}
	if got, want := len(fake.Messages()), 1; got != want {
		t.Errorf("got %d messages; want %d, the progress message", got, want)
	}
	if got := waits.Waits(); len(got) != 0 {
		t.Errorf("waits = %v; want none: a refusal is final", got)
	}
}

// TestSlackWebhookProgress checks that a webhook, which cannot edit what it
// posted, posts no progress and one report.
func TestSlackWebhookProgress(t *testing.T) {
	fake := slackfake.New(t, token)
	n := newNotifier(t, fake, true)
	ref, err := n.Started(t.Context(), poller.Report{Operation: starting()})
	if err != nil || !ref.IsZero() {
		t.Fatalf("Started = %+v, %v; want a zero ref and no error", ref, err)
	}
	if err := n.Progress(t.Context(), ref, poller.Report{Operation: running(), Polls: 3}); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	// Even given a ref (from a bot configured before), it neither updates nor replies.
	stale := poller.MessageRef{Channel: "C0OLD", TS: "1700000000.000001"}
	if err := n.Progress(t.Context(), stale, poller.Report{Operation: running(), Polls: 4}); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	if got := len(fake.Messages()); got != 0 {
		t.Fatalf("got %d messages before the report; want 0", got)
	}
	if err := n.Notify(t.Context(), poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful(), Message: stale}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].Method != "webhook" || msgs[0].Attachments[0].Title != "Datastore export succeeded" {
		t.Errorf("got %+v; want one webhook report", msgs)
	}
}

// TestSlackProgressZeroRef checks that a bot given no message to update
// does nothing.
func TestSlackProgressZeroRef(t *testing.T) {
	fake := slackfake.New(t, token)
	n := newNotifier(t, fake, false)
	if err := n.Progress(t.Context(), poller.MessageRef{}, poller.Report{Operation: running()}); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	if got := len(fake.Messages()); got != 0 {
		t.Errorf("got %d messages; want 0", got)
	}
}

// TestSlackProgressErrors checks the errors of Started and Progress: what
// failed and where, with Slack's cause, and never the token.
func TestSlackProgressErrors(t *testing.T) {
	const wrong = "xoxb-1111111111-2222222222-WrOnGtOkEn"
	tests := []struct {
		name string
		// token the notifier uses; setup breaks the fake.
		token string
		setup func(fake *slackfake.Server)
		call  func(n *notifier.Slack, ref poller.MessageRef) error
		want  string
	}{
		{"start with a wrong token", wrong, nil, func(n *notifier.Slack, _ poller.MessageRef) error {
			_, err := n.Started(t.Context(), poller.Report{Operation: starting()})
			return err
		}, "post start message to slack channel #backups: invalid_auth"},
		{"start in an unknown channel", token, func(fake *slackfake.Server) { fake.SetChannels("#elsewhere") }, func(n *notifier.Slack, _ poller.MessageRef) error {
			_, err := n.Started(t.Context(), poller.Report{Operation: starting()})
			return err
		}, "channel_not_found"},
		{"progress with a wrong token", wrong, nil, func(n *notifier.Slack, ref poller.MessageRef) error {
			return n.Progress(t.Context(), ref, poller.Report{Operation: running()})
		}, "update progress message 1700000000.000001 in slack channel " + slackfake.ChannelID(channel) + ": invalid_auth"},
		{"progress of a deleted message", token, func(fake *slackfake.Server) { fake.Delete("1700000000.000001") }, func(n *notifier.Slack, ref poller.MessageRef) error {
			return n.Progress(t.Context(), ref, poller.Report{Operation: running()})
		}, "message_not_found"},
		{"progress unreachable", token, func(fake *slackfake.Server) { fake.Close() }, func(n *notifier.Slack, ref poller.MessageRef) error {
			return n.Progress(t.Context(), ref, poller.Report{Operation: running()})
		}, "chat.update"},
		{"report reply with a revoked token", token, func(fake *slackfake.Server) {
			fake.RefuseNextCall("chat.postMessage", 1, "token_revoked")
		}, func(n *notifier.Slack, ref poller.MessageRef) error {
			return n.Notify(t.Context(), poller.Report{Outcome: poller.OutcomeSuccess, Operation: successful(), Message: ref})
		}, "reply in the thread of message 1700000000.000001 in slack channel " + slackfake.ChannelID(channel) + ": token_revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			good := newNotifier(t, fake, false)
			ref, err := good.Started(t.Context(), poller.Report{Operation: starting()})
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(fake)
			}
			n, err := notifier.NewSlackBot(tc.token, channel, time.UTC, notifier.WithAPIURL(fake.URL()),
				notifier.WithHTTPClient(fake.Client()), fastRetry(&testrig.Sleeps{}))
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(n, ref)
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			for _, s := range []string{tc.token, strings.TrimPrefix(tc.token, "xoxb-")} {
				if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v", err), s) {
					t.Errorf("error %q contains the token", err)
				}
			}
		})
	}
}

// TestSlackStartedRetries checks that the start message is retried after a
// 429, which posted nothing, but not after a 5xx, which may have: a second
// start message would never be updated.
func TestSlackStartedRetries(t *testing.T) {
	tests := []struct {
		name   string
		status int
		after  time.Duration
		ok     bool
		waits  int
	}{
		{"429 with Retry-After", 429, 2 * time.Second, true, 1},
		{"500", 500, 0, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			now := time.Now()
			var waits testrig.Sleeps
			n := progressBot(t, fake, time.UTC, &now, &waits)
			fake.FailNext(1, tc.status, tc.after)
			ref, err := n.Started(t.Context(), poller.Report{Operation: starting()})
			if tc.ok != (err == nil) || tc.ok == ref.IsZero() {
				t.Fatalf("Started = %+v, %v; want success %v", ref, err, tc.ok)
			}
			if got := waits.Waits(); len(got) != tc.waits || len(got) > 0 && got[0] < tc.after {
				t.Errorf("waits = %v; want %d of at least %v", got, tc.waits, tc.after)
			}
			if got, want := len(fake.Messages()), map[bool]int{true: 1, false: 0}[tc.ok]; got != want {
				t.Errorf("got %d messages; want %d", got, want)
			}
		})
	}
}
