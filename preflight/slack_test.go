package preflight_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
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

// echoToken is a bot token of Slack's real length, so that a text echoing
// it is longer than the bounds of what the checks keep of an answer.
const echoToken = "xoxb-1111111111-2222222222222-SeCrEtSeCrEtSeCrEtSeCrEt"

// leak is the longest part of token, more than its "xoxb-" prefix, that s
// shows, or "": a text cut in the middle of the token leaks its start.
func leak(s, token string) string {
	for n := len(token); n > len("xoxb-")+4; n-- {
		for i := 0; i+n <= len(token); i++ {
			if strings.Contains(s, token[i:i+n]) {
				return token[i : i+n]
			}
		}
	}
	return ""
}

// echoSlack is a Slack Web API over real HTTP whose answers echo the token
// it is sent (a proxy, a broken or hostile server): auth.test and
// chat.scheduleMessage answer what answer says, given the token.
func echoSlack(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, method, token string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hangup" {
			// Close the connection without an answer: the client's error
			// names the URL, query and all.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		r.ParseForm()
		token := r.PostForm.Get("token")
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && token == "" {
			token = bearer
		}
		if token == "" {
			t.Errorf("%s without the token", r.URL.Path)
		}
		answer(w, r, strings.TrimPrefix(r.URL.Path, "/api/"), token)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeSlack(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

var authOK = map[string]any{"ok": true, "url": "https://shop.slack.com/", "team": "Shop", "user": "dsexport", "team_id": "T0SHOP", "user_id": "U0BOT"}

// TestSlackChecksRedactToken: whatever Slack answers, an echo of the token
// shows in no check and no error, whole or cut: a refusal whose code holds
// it (shorter than the bound on a code and longer), a transport error
// whose URL holds it, a bot's name, a failed deletion's error.
func TestSlackChecksRedactToken(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request, method, token string)
		// check is the check whose detail shows the echo, redacted.
		check int
	}{
		{"auth.test refusal, short", func(w http.ResponseWriter, r *http.Request, method, token string) {
			writeSlack(w, map[string]any{"ok": false, "error": token})
		}, 0},
		{"auth.test refusal, longer than a code is kept", func(w http.ResponseWriter, r *http.Request, method, token string) {
			writeSlack(w, map[string]any{"ok": false, "error": "invalid_auth: " + token})
		}, 0},
		{"chat.scheduleMessage refusal", func(w http.ResponseWriter, r *http.Request, method, token string) {
			if method == "auth.test" {
				writeSlack(w, authOK)
				return
			}
			writeSlack(w, map[string]any{"ok": false, "error": "not_in_channel: " + token})
		}, 1},
		{"a redirect to a URL holding the token", func(w http.ResponseWriter, r *http.Request, method, token string) {
			http.Redirect(w, r, "/hangup?token="+token, http.StatusFound)
		}, 0},
		{"a bot named the token", func(w http.ResponseWriter, r *http.Request, method, token string) {
			switch method {
			case "auth.test":
				a := maps.Clone(authOK)
				a["user"] = token
				writeSlack(w, a)
			case "chat.scheduleMessage":
				writeSlack(w, map[string]any{"ok": true, "channel": "C0BACKUPS", "scheduled_message_id": "Q1", "post_at": 1})
			default:
				writeSlack(w, map[string]any{"ok": true})
			}
		}, 1},
		{"chat.deleteScheduledMessage refusal", func(w http.ResponseWriter, r *http.Request, method, token string) {
			switch method {
			case "auth.test":
				writeSlack(w, authOK)
			case "chat.scheduleMessage":
				writeSlack(w, map[string]any{"ok": true, "channel": "C0BACKUPS", "scheduled_message_id": "Q1", "post_at": 1})
			default:
				writeSlack(w, map[string]any{"ok": false, "error": "internal_error: " + token})
			}
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := echoSlack(t, tc.answer)
			s := preflight.Slack{Token: echoToken, APIURL: srv.URL + "/api", HTTPClient: srv.Client(), Channels: []string{"#backups"}}
			// The errors, as the checks return them...
			for _, cf := range preflight.SlackChecks(s) {
				checks, err := cf.Run(context.Background())
				if err != nil {
					if l := leak(err.Error(), echoToken); l != "" {
						t.Errorf("%s: error %q shows %q of the token", cf.Name, err, l)
					}
				}
				for _, c := range checks {
					if l := leak(c.Name+c.Target+c.Detail+c.Fix, echoToken); l != "" {
						t.Errorf("%s: check %+v shows %q of the token", cf.Name, c, l)
					}
				}
			}
			// ...and the checks as the doctor reports them, errors included.
			checks := poller.Doctor{Checks: preflight.SlackChecks(s)}.Run(context.Background())
			if len(checks) != 2 {
				t.Fatalf("%d checks, want 2: %+v", len(checks), checks)
			}
			for _, c := range checks {
				if l := leak(c.Name+c.Target+c.Detail+c.Fix, echoToken); l != "" {
					t.Errorf("check %+v shows %q of the token", c, l)
				}
			}
			// The echo reached the check, redacted: the test sees what it
			// would leak.
			if c := checks[tc.check]; !strings.Contains(c.Detail, "[redacted]") {
				t.Errorf("check %d %+v: want its detail to show the echo as [redacted]", tc.check, c)
			}
		})
	}
}
