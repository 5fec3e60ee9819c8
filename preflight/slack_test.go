package preflight_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/preflight"
)

const slackToken = "xoxb-preflight-secret-token"

func runSlack(t *testing.T, s preflight.Slack) []poller.Check {
	t.Helper()
	checks := poller.Doctor{Checks: preflight.SlackChecks(s)}.Run(context.Background())
	for _, c := range checks {
		t.Logf("%s ok=%v warn=%v %s | %s", c.Name, c.OK, c.Warning, c.Detail, c.Fix)
		if strings.Contains(c.Detail+c.Fix, slackToken) {
			t.Errorf("check %s shows the token: %+v", c.Name, c)
		}
	}
	return checks
}

// TestSlackChecks runs the Slack checks against slackfake: a working
// token and channels (each checked once, with no message left behind), a
// refused token, a channel that does not exist, and one the bot is not in.
func TestSlackChecks(t *testing.T) {
	tests := []struct {
		name  string
		token string
		setup func(*slackfake.Server)
		// want is, per check, "ok" or the fix it must name.
		want []string
	}{
		{"healthy", slackToken, nil, []string{"ok", "ok", "ok"}},
		{"bad token", "xoxb-wrong", nil, []string{preflight.TokenFix, "", ""}},
		{"unknown channel", slackToken, func(f *slackfake.Server) { f.SetChannels("#backups") },
			[]string{"ok", "ok", "/invite @" + slackfake.BotUser + " in #shop"}},
		{"bot not in channel", slackToken, func(f *slackfake.Server) { f.SetChannels("#backups"); f.SetNotInChannel("shop") },
			[]string{"ok", "ok", "/invite @" + slackfake.BotUser + " in #shop"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, slackToken)
			if tc.setup != nil {
				tc.setup(fake)
			}
			checks := runSlack(t, preflight.Slack{Token: tc.token, APIURL: strings.TrimSuffix(fake.URL(), "/"), HTTPClient: fake.Client(),
				Channels: []string{"#backups", "shop", "#backups", ""}})
			if len(checks) != len(tc.want) {
				t.Fatalf("got %d checks; want %d", len(checks), len(tc.want))
			}
			names := []string{preflight.CheckSlackAuth, preflight.CheckSlackChannel, preflight.CheckSlackChannel}
			for i, c := range checks {
				if c.Name != names[i] {
					t.Errorf("check %d is %q; want %q", i, c.Name, names[i])
				}
				switch want := tc.want[i]; {
				case want == "ok" && (!c.OK || c.Warning):
					t.Errorf("check %d (%s) failed: %+v", i, c.Name, c)
				case want != "ok" && (c.OK || c.Fix != want):
					t.Errorf("check %d (%s) = %+v; want a failure with fix %q", i, c.Name, c, want)
				}
			}
			if tc.want[0] == "ok" && !strings.Contains(checks[0].Detail, "@"+slackfake.BotUser) {
				t.Errorf("token check detail %q lacks the bot's name", checks[0].Detail)
			}
			if left := fake.Scheduled(); len(left) != 0 {
				t.Errorf("test messages left scheduled: %+v", left)
			}
			if msgs := fake.Messages(); len(msgs) != 0 {
				t.Errorf("the checks posted: %+v", msgs)
			}
		})
	}
}

// TestSlackChannelDeleteFails: a test message that could not be deleted is
// a warning that says when it will show.
func TestSlackChannelDeleteFails(t *testing.T) {
	fake := slackfake.New(t, slackToken)
	fake.RefuseNextCall("chat.deleteScheduledMessage", 1, "internal_error")
	checks := runSlack(t, preflight.Slack{Token: slackToken, APIURL: fake.URL(), HTTPClient: fake.Client(), Channels: []string{"C0BACKUPS"}})
	if len(checks) != 2 || !checks[1].OK || !checks[1].Warning || !strings.Contains(checks[1].Detail, "could not be deleted") {
		t.Errorf("checks = %+v; want the channel check a warning about the message left", checks)
	}
	if got := fake.Scheduled(); len(got) != 1 {
		t.Errorf("scheduled = %+v; want the one left", got)
	}
}

func TestSlackWebhookAndNone(t *testing.T) {
	checks := runSlack(t, preflight.Slack{Webhook: true, Channels: []string{"#x"}})
	if len(checks) != 1 || checks[0].Name != preflight.CheckSlackWebhook || !checks[0].OK || !checks[0].Warning {
		t.Errorf("webhook: %+v; want one warning", checks)
	}
	if got := preflight.SlackChecks(preflight.Slack{}); len(got) != 0 {
		t.Errorf("no Slack: %d checks; want none", len(got))
	}
}
