package slackfake_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
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
		{"unsupported method", func(api *slack.Client) error { _, err := api.AuthTestContext(t.Context()); return err }, "unknown_method"},
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
