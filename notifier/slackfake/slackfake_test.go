package slackfake_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/dsexport/dsexport/notifier/slackfake"
)

const token = "xoxb-test-token"

// TestPostMessageWithSlackGo checks the fake against the real client: what it
// records is what slack-go sent.
func TestPostMessageWithSlackGo(t *testing.T) {
	fake := slackfake.New(t, token)
	api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
	att := slack.Attachment{Color: "#2eb886", Title: "done", Fields: []slack.AttachmentField{{Title: "Kinds", Value: "all", Short: true}}}
	ch, ts, err := api.PostMessageContext(t.Context(), "C123", slack.MsgOptionText("hello", false), slack.MsgOptionAttachments(att))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ch, "C123"; got != want {
		t.Errorf("channel = %q; want %q", got, want)
	}
	msgs := fake.Messages()
	if got, want := len(msgs), 1; got != want {
		t.Fatalf("got %d messages; want %d", got, want)
	}
	m := msgs[0]
	if got, want := m.TS, ts; got != want || ts == "" {
		t.Errorf("recorded ts = %q; want %q (non-empty)", got, want)
	}
	if m.Token != token || m.Channel != "C123" || m.Text != "hello" {
		t.Errorf("recorded %+v; want token %q, channel C123, text hello", m, token)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Title != "done" || m.Attachments[0].Fields[0] != att.Fields[0] {
		t.Errorf("recorded attachments %+v; want %+v", m.Attachments, att)
	}
}

func TestWebAPIErrors(t *testing.T) {
	tests := []struct {
		name string
		call func(api *slack.Client) error
		want string
	}{
		{"unsupported method", func(api *slack.Client) error {
			_, err := api.GetConversationInfoContext(t.Context(), &slack.GetConversationInfoInput{ChannelID: "C123"})
			return err
		}, "unknown_method"},
		{"message without text", func(api *slack.Client) error {
			_, _, err := api.PostMessageContext(t.Context(), "C123")
			return err
		}, "no_text"},
		{"unknown channel", func(api *slack.Client) error {
			_, _, err := api.PostMessageContext(t.Context(), "C999", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			fake.SetChannels("C123")
			api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
			err := tc.call(api)
			var slackErr slack.SlackErrorResponse
			if !errors.As(err, &slackErr) || slackErr.Err != tc.want {
				t.Errorf("error = %v; want Slack's %q", err, tc.want)
			}
		})
	}
}

// TestTokenPlaces checks that the token is taken from the form or from an
// Authorization header, as Slack does.
func TestTokenPlaces(t *testing.T) {
	tests := []struct {
		name   string
		form   url.Values
		header string
		want   string
	}{
		{"form token", url.Values{"token": {token}}, "", `"ok":true`},
		{"bearer header", nil, "Bearer " + token, `"ok":true`},
		{"wrong token", url.Values{"token": {"xoxb-other"}}, "", `"error":"invalid_auth"`},
		{"no token", nil, "", `"error":"not_authed"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			form := url.Values{"channel": {"C1"}, "text": {"hi"}}
			for k, v := range tc.form {
				form[k] = v
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, fake.URL()+"chat.postMessage", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := fake.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), tc.want) {
				t.Errorf("answer %s; want it to contain %s", body, tc.want)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	fake := slackfake.New(t, token)
	// Slack sends whole seconds; the fake rounds up.
	fake.FailNext(1, http.StatusTooManyRequests, 1500*time.Millisecond)
	fake.FailNext(1, http.StatusNotFound, 0)
	post := func() *http.Response {
		t.Helper()
		body, _ := json.Marshal(slack.WebhookMessage{Text: "hi"})
		resp, err := fake.Client().Post(fake.WebhookURL(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := post()
	if got, want := resp.StatusCode, 429; got != want {
		t.Errorf("first post: status %d; want %d", got, want)
	}
	if got, want := resp.Header.Get("Retry-After"), "2"; got != want {
		t.Errorf("Retry-After = %q; want %q", got, want)
	}
	resp = post()
	body, _ := io.ReadAll(resp.Body)
	if got, want := resp.StatusCode, 404; got != want || string(body) != "no_service" {
		t.Errorf("second post: %d %q; want %d no_service", got, body, want)
	}
	resp = post()
	body, _ = io.ReadAll(resp.Body)
	if got, want := string(body), "ok"; got != want || resp.StatusCode != 200 {
		t.Errorf("third post: %d %q; want 200 %q", resp.StatusCode, got, want)
	}
	if got, want := len(fake.Messages()), 1; got != want {
		t.Errorf("got %d messages; want %d", got, want)
	}
}

// TestUpdateWithSlackGo checks chat.update and thread replies against the
// real client: a post by channel name answers the channel's ID, the update
// by that ID changes the message in place and keeps its earlier version,
// and a reply in its thread is recorded as one.
func TestUpdateWithSlackGo(t *testing.T) {
	fake := slackfake.New(t, token)
	fake.SetChannels("#backups")
	api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
	ctx := t.Context()

	ch, ts, err := api.PostMessageContext(ctx, "#backups", slack.MsgOptionText("started", false),
		slack.MsgOptionAttachments(slack.Attachment{Title: "v1"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ch, slackfake.ChannelID("#backups"); got != want || !strings.HasPrefix(ch, "C") {
		t.Errorf("channel = %q; want the ID %q", got, want)
	}
	if got, want := slackfake.ChannelID("backups"), ch; got != want {
		t.Errorf(`ChannelID("backups") = %q; want %q, the ID of "#backups"`, got, want)
	}
	// A second post to the channel answers the same ID.
	if ch2, _, err := api.PostMessageContext(ctx, "#backups", slack.MsgOptionText("other", false)); err != nil || ch2 != ch {
		t.Errorf("second post: channel %q, %v; want %q", ch2, err, ch)
	}

	gotCh, gotTS, text, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("running", false),
		slack.MsgOptionAttachments(slack.Attachment{Title: "v2"}))
	if err != nil {
		t.Fatal(err)
	}
	if gotCh != ch || gotTS != ts || text != "running" {
		t.Errorf("update answered %q %q %q; want %q %q %q", gotCh, gotTS, text, ch, ts, "running")
	}
	// Without attachments, chat.update keeps the message's.
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("done", false)); err != nil {
		t.Fatal(err)
	}
	m, ok := fake.Message(ts)
	if !ok {
		t.Fatalf("message %s not found", ts)
	}
	if got, want := m.Text, "done"; got != want {
		t.Errorf("text = %q; want %q", got, want)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Title != "v2" {
		t.Errorf("attachments = %+v; want the one titled v2", m.Attachments)
	}
	if got, want := m.Updates, 2; got != want {
		t.Errorf("updates = %d; want %d", got, want)
	}
	if len(m.Versions) != 2 || m.Versions[0].Text != "started" || m.Versions[1].Text != "running" {
		t.Errorf("versions = %+v; want started, running", m.Versions)
	}
	if got, want := m.Channel, "#backups"; got != want || m.ChannelID != ch {
		t.Errorf("channel = %q (ID %q); want %q (ID %q)", got, m.ChannelID, want, ch)
	}

	_, replyTS, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts), slack.MsgOptionBroadcast())
	if err != nil {
		t.Fatal(err)
	}
	reply, ok := fake.Message(replyTS)
	if !ok || reply.ThreadTS != ts || !reply.Broadcast {
		t.Errorf("reply = %+v; want a broadcast reply in thread %s", reply, ts)
	}
	if got, want := len(fake.Messages()), 3; got != want {
		t.Errorf("got %d messages; want %d", got, want)
	}

	if !fake.Delete(ts) {
		t.Fatalf("Delete(%s) = false", ts)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("late", false)); !isSlackError(err, "message_not_found") {
		t.Errorf("update of a deleted message = %v; want message_not_found", err)
	}
}

func TestUpdateErrors(t *testing.T) {
	tests := []struct {
		name string
		call func(api *slack.Client, ch, ts string) error
		want string
	}{
		{"unknown ts", func(api *slack.Client, ch, ts string) error {
			_, _, _, err := api.UpdateMessageContext(t.Context(), ch, "1700000000.999999", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"ts of another channel", func(api *slack.Client, ch, ts string) error {
			_, _, _, err := api.UpdateMessageContext(t.Context(), "C0OTHER", ts, slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"channel by name", func(api *slack.Client, ch, ts string) error {
			_, _, _, err := api.UpdateMessageContext(t.Context(), "#backups", ts, slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"update to nothing", func(api *slack.Client, ch, ts string) error {
			_, _, _, err := api.UpdateMessageContext(t.Context(), ch, ts, slack.MsgOptionText("", false),
				slack.MsgOptionAttachments())
			return err
		}, "no_text"},
		{"reply to an unknown thread", func(api *slack.Client, ch, ts string) error {
			_, _, err := api.PostMessageContext(t.Context(), ch, slack.MsgOptionText("x", false), slack.MsgOptionTS("1700000000.999999"))
			return err
		}, "thread_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := slackfake.New(t, token)
			api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
			ch, ts, err := api.PostMessageContext(t.Context(), "#backups", slack.MsgOptionText("hello", false))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.call(api, ch, ts); !isSlackError(err, tc.want) {
				t.Errorf("error = %v; want Slack's %q", err, tc.want)
			}
			m, _ := fake.Message(ts)
			if m.Text != "hello" || m.Updates != 0 {
				t.Errorf("message = %+v; want it unchanged", m)
			}
		})
	}
}

// TestFailNextCall checks that failures for one method leave the others alone.
func TestFailNextCall(t *testing.T) {
	fake := slackfake.New(t, token)
	api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
	ch, ts, err := api.PostMessageContext(t.Context(), "#backups", slack.MsgOptionText("hello", false))
	if err != nil {
		t.Fatal(err)
	}
	fake.FailNextCall("chat.postMessage", 1, http.StatusInternalServerError, 0)
	if _, _, _, err := api.UpdateMessageContext(t.Context(), ch, ts, slack.MsgOptionText("updated", false)); err != nil {
		t.Errorf("update while posts fail: %v", err)
	}
	_, _, err = api.PostMessageContext(t.Context(), ch, slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts))
	var status slack.StatusCodeError
	if !errors.As(err, &status) || status.Code != http.StatusInternalServerError {
		t.Errorf("post = %v; want a 500", err)
	}
	if _, _, err := api.PostMessageContext(t.Context(), ch, slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts)); err != nil {
		t.Errorf("second post: %v", err)
	}
}

func isSlackError(err error, code string) bool {
	var slackErr slack.SlackErrorResponse
	return errors.As(err, &slackErr) && slackErr.Err == code
}

// TestLimits checks that the fake shows a message as Slack would (text cut
// at 40,000 characters with the message_truncated warning, attachment text
// at 8,000) and names every part over Slack's limits, for the Web API, an
// update and the webhook alike.
func TestLimits(t *testing.T) {
	fake := slackfake.New(nil, token)
	defer fake.Close()
	api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
	big := slack.Attachment{
		Title: strings.Repeat("T", 151), Text: strings.Repeat("é", 10000), Fallback: strings.Repeat("f", 4001),
		Fields: []slack.AttachmentField{{Title: "Kinds", Value: strings.Repeat("k", 2001)}},
	}
	_, ts, err := api.PostMessageContext(t.Context(), "C123",
		slack.MsgOptionText(strings.Repeat("x", 50000), false), slack.MsgOptionAttachments(big))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"text: 50000 characters; limit 4000",
		"attachments[0].title: 151 characters; limit 150",
		"attachments[0].text: 10000 characters; limit 8000",
		"attachments[0].fallback: 4001 characters; limit 4000",
		"attachments[0].fields[0].value: 2001 characters; limit 2000",
	}
	if got := fake.Violations(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	m, _ := fake.Message(ts)
	if got, want := len([]rune(m.Text)), slackfake.MaxText; got != want {
		t.Errorf("shown text has %d characters; want %d", got, want)
	}
	if got, want := len([]rune(m.Attachments[0].Text)), slackfake.MaxAttachmentText; got != want {
		t.Errorf("shown attachment text has %d characters; want %d", got, want)
	}

	if _, _, _, err := api.UpdateMessageContext(t.Context(), "C123", ts, slack.MsgOptionText(strings.Repeat("u", 4001), false)); err != nil {
		t.Fatal(err)
	}
	if err := slack.PostWebhookCustomHTTPContext(t.Context(), fake.WebhookURL(), fake.Client(),
		&slack.WebhookMessage{Text: strings.Repeat("w", 4001)}); err != nil {
		t.Fatal(err)
	}
	// The update's text and the webhook's are over; the attachment the update kept was counted once.
	want = append(want, "text: 4001 characters; limit 4000", "text: 4001 characters; limit 4000")
	if got := fake.Violations(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after an update and a webhook, violations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Within the limits, nothing is reported; a character is a rune, not a byte.
	ok := slackfake.Message{Text: strings.Repeat("é", 4000), Attachments: []slack.Attachment{{Text: strings.Repeat("é", 8000)}}}
	if v := slackfake.Check(ok); len(v) != 0 {
		t.Errorf("Check(at the limits) = %q; want none", v)
	}
}

// TestAuthAndSchedule checks auth.test, chat.scheduleMessage and
// chat.deleteScheduledMessage against the real client, with Slack's error
// codes for a bad token, a channel that does not exist and one the bot is
// not in.
func TestAuthAndSchedule(t *testing.T) {
	fake := slackfake.New(t, token)
	fake.SetChannels("#backups")
	fake.SetNotInChannel("#private")
	api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
	ctx := t.Context()

	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if auth.User != slackfake.BotUser || auth.TeamID != slackfake.TeamID || auth.BotID != slackfake.BotID {
		t.Errorf("auth.test = %+v; want the fake's bot", auth)
	}
	bad := slack.New("xoxb-other", slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
	if _, err := bad.AuthTestContext(ctx); !isSlackError(err, "invalid_auth") {
		t.Errorf("auth.test with another token = %v; want invalid_auth", err)
	}

	postAt := strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)
	ch, id, err := api.ScheduleMessageContext(ctx, "#backups", postAt, slack.MsgOptionText("later", false))
	if err != nil {
		t.Fatal(err)
	}
	if ch != slackfake.ChannelID("#backups") || !strings.HasPrefix(id, "Q") {
		t.Errorf("scheduled in %q as %q; want the channel's ID and a Q… ID", ch, id)
	}
	if got := fake.Scheduled(); len(got) != 1 || got[0].Text != "later" || got[0].TS != id {
		t.Errorf("scheduled = %+v; want the one message", got)
	}
	if len(fake.Messages()) != 0 {
		t.Errorf("a scheduled message was posted: %+v", fake.Messages())
	}
	if _, err := api.DeleteScheduledMessageContext(ctx, &slack.DeleteScheduledMessageParameters{Channel: "#backups", ScheduledMessageID: id}); !isSlackError(err, "channel_not_found") {
		t.Errorf("delete by channel name = %v; want channel_not_found", err)
	}
	if ok, err := api.DeleteScheduledMessageContext(ctx, &slack.DeleteScheduledMessageParameters{Channel: ch, ScheduledMessageID: id}); err != nil || !ok {
		t.Errorf("delete = %v, %v", ok, err)
	}
	if got := fake.Scheduled(); len(got) != 0 {
		t.Errorf("after delete, scheduled = %+v", got)
	}
	if _, err := api.DeleteScheduledMessageContext(ctx, &slack.DeleteScheduledMessageParameters{Channel: ch, ScheduledMessageID: id}); !isSlackError(err, "invalid_scheduled_message_id") {
		t.Errorf("second delete = %v; want invalid_scheduled_message_id", err)
	}

	for _, tc := range []struct{ channel, postAt, want string }{
		{"#nowhere", postAt, "channel_not_found"},
		{"#private", postAt, "not_in_channel"},
		{"#backups", strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10), "time_in_past"},
		{"#backups", strconv.FormatInt(time.Now().Add(slackfake.MaxSchedule+time.Hour).Unix(), 10), "time_too_far"},
	} {
		if _, _, err := api.ScheduleMessageContext(ctx, tc.channel, tc.postAt, slack.MsgOptionText("x", false)); !isSlackError(err, tc.want) {
			t.Errorf("schedule in %s at %s = %v; want %s", tc.channel, tc.postAt, err, tc.want)
		}
	}
	if _, _, err := api.PostMessageContext(ctx, "#private", slack.MsgOptionText("x", false)); !isSlackError(err, "not_in_channel") {
		t.Errorf("post in #private = %v; want not_in_channel", err)
	}
}
