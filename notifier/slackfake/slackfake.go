// Package slackfake is an in-process Slack for tests: a real HTTP server that
// speaks the wire formats of chat.postMessage, chat.update,
// chat.scheduleMessage, chat.deleteScheduledMessage, auth.test and incoming
// webhooks, records what it receives, and fails on demand the way Slack does.
package slackfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/faults"
	"github.com/slack-go/slack"
)

// Message is one message the fake accepted, as it reads now: a message
// changed by chat.update shows its latest version, and keeps the earlier
// ones in Versions.
type Message struct {
	// Method is how the message was posted: "chat.postMessage" or "webhook".
	Method string
	// Token is the token the Web API call authenticated with ("" for webhooks).
	Token string
	// Channel is the channel as the poster named it ("#backups" or an ID);
	// ChannelID is the ID the fake answered with ("" for webhooks).
	Channel   string
	ChannelID string
	Text      string
	// Attachments are decoded from the JSON Slack receives (a form field for
	// chat.postMessage and chat.update, part of the body for webhooks).
	Attachments []slack.Attachment
	// TS is the timestamp the fake answered with ("" for webhooks).
	TS string
	// ThreadTS is the message this one replies to in its thread ("" for a
	// message of the channel); Broadcast is set when the reply was also
	// sent to the channel (reply_broadcast).
	ThreadTS  string
	Broadcast bool
	// Updates counts the chat.update calls applied to the message, and
	// Versions holds what it read like before each, oldest first (the
	// post, then each update but the last).
	Updates  int
	Versions []Message
	// Received is when the fake accepted the message (its post, not its
	// updates).
	Received time.Time
}

// Server is a fake Slack on a local httptest.Server.
type Server struct {
	srv         *httptest.Server
	token       string
	webhookPath string
	tb          testing.TB

	mu       sync.Mutex
	messages []Message
	channels map[string]bool // nil: every channel exists
	// outside are channels that exist but the bot is not a member of
	// (SetNotInChannel): posts there answer not_in_channel.
	outside map[string]bool
	// scheduled are the messages chat.scheduleMessage accepted and
	// chat.deleteScheduledMessage did not delete, by ID. The fake has no
	// clock: they are never posted.
	scheduled map[string]Message
	// posts counts the messages ever posted, deleted ones included, so
	// every message gets its own TS.
	posts    int
	failures []failure
	// violations are the parts of messages over Slack's limits (Check).
	violations []string
	// faults injects random failures (InjectFaults).
	faults faults.Injector
}

// InjectFaults makes each post fail with probability rate, half of them
// with 500 and half with 429 and a Retry-After of one second, drawn from a
// generator seeded with seed so a run can be repeated.
func (s *Server) InjectFaults(rate float64, seed uint64) { s.faults.Set(rate, seed, 0x5eed) }

// Injected returns how many failures InjectFaults caused so far.
func (s *Server) Injected() int { return s.faults.Injected() }

// failure is one programmed failed answer.
type failure struct {
	// method is the Web API method the failure is for ("webhook" for the
	// webhook); "" fails whatever comes next.
	method     string
	status     int
	retryAfter time.Duration
	// code, when set, makes the answer a 200 with Slack's {"ok":false}
	// and this error code instead.
	code string
}

// New starts a fake Slack that accepts token, and closes it when the test
// ends. tb may be nil; then the caller must call Close. Unsupported calls are
// logged to tb so a test that trips over one says why.
func New(tb testing.TB, token string) *Server {
	secret := make([]byte, 12)
	_, _ = rand.Read(secret) // crypto/rand.Read does not fail.
	s := &Server{
		token: token,
		tb:    tb,
		// A random last element, like Slack's, so tests can check the
		// webhook URL does not leak into errors.
		webhookPath: "/services/T00DSEXPORT/B00DSEXPORT/" + hex.EncodeToString(secret),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.api)
	mux.HandleFunc("/services/", s.webhook)
	s.srv = httptest.NewServer(mux)
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the Web API base, with the trailing slash slack-go needs:
// pass it to slack.OptionAPIURL.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// WebhookURL is the URL of the fake's one incoming webhook.
func (s *Server) WebhookURL() string { return s.srv.URL + s.webhookPath }

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetChannels limits chat.postMessage and chat.update to the given channels
// (names or IDs); others answer channel_not_found. Without it every channel
// exists.
func (s *Server) SetChannels(channels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels = make(map[string]bool)
	for _, c := range channels {
		s.channels[c] = true
		s.channels[ChannelID(c)] = true
	}
}

// SetNotInChannel makes channels (names or IDs) exist with the bot not a
// member: chat.postMessage and chat.scheduleMessage there answer
// not_in_channel, as Slack does for a bot with chat:write only.
func (s *Server) SetNotInChannel(channels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outside == nil {
		s.outside = make(map[string]bool)
	}
	for _, c := range channels {
		s.outside[ChannelID(c)] = true
		if s.channels != nil {
			s.channels[c] = true
			s.channels[ChannelID(c)] = true
		}
	}
}

// Scheduled returns the scheduled messages not deleted, in no order.
func (s *Server) Scheduled() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.scheduled))
	for _, m := range s.scheduled {
		out = append(out, m.clone())
	}
	return out
}

// The identity auth.test answers for the fake's token.
const (
	TeamID  = "T00DSEXPORT"
	Team    = "dsexport-test"
	BotUser = "dsexport-bot"
	BotID   = "B00DSEXPORT"
	UserID  = "U00DSEXPORT"
)

// MaxSchedule is how far ahead chat.scheduleMessage takes post_at: "You
// will only be able to schedule a message up to 120 days into the future"
// (https://api.slack.com/methods/chat.scheduleMessage, time_too_far).
const MaxSchedule = 120 * 24 * time.Hour

// channelIDRE matches what the fake takes for a conversation ID (public
// channel, private channel, direct message), as opposed to a name.
var channelIDRE = regexp.MustCompile(`^[CGD][A-Z0-9]+$`)

// ChannelID is the ID the fake gives channel: an ID stays as it is, and a
// name, with or without its "#", always maps to the same ID ("#backups" and
// "backups" to one "C0…"), as Slack answers chat.postMessage with the ID of
// the channel it was given by name.
func ChannelID(channel string) string {
	if channelIDRE.MatchString(channel) {
		return channel
	}
	h := fnv.New32a()
	h.Write([]byte(strings.TrimPrefix(channel, "#")))
	return fmt.Sprintf("C0%08X", h.Sum32())
}

// FailNext makes the next n requests (Web API or webhook) answer with HTTP
// status. A positive retryAfter is sent as Retry-After in whole seconds, as
// Slack does with 429.
func (s *Server) FailNext(n int, status int, retryAfter time.Duration) {
	s.FailNextCall("", n, status, retryAfter)
}

// FailNextCall is FailNext for the next n calls of one Web API method
// ("chat.postMessage", "chat.update"), or of the webhook ("webhook"); other
// calls go through meanwhile.
func (s *Server) FailNextCall(method string, n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{method: method, status: status, retryAfter: retryAfter})
	}
}

// RefuseNextCall makes the next n calls of a Web API method answer
// {"ok":false,"error":code}, as Slack refuses a call it will not make
// (such as cant_update_message), without doing anything. For "webhook" the
// answer is a 400 with code as its body.
func (s *Server) RefuseNextCall(method string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{method: method, status: http.StatusOK, code: code})
	}
}

// Only returns the one message accepted so far, failing t unless there is
// exactly one and it has one attachment.
func (s *Server) Only(t testing.TB) Message {
	t.Helper()
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Slack got %d messages; want exactly 1: %+v", len(msgs), msgs)
	}
	if len(msgs[0].Attachments) != 1 {
		t.Fatalf("Slack message has %d attachments; want 1", len(msgs[0].Attachments))
	}
	return msgs[0]
}

// Messages returns a copy of the messages accepted so far, thread replies
// included, in the order they were posted.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = m.clone()
	}
	return out
}

// Message returns the message with timestamp ts, as it reads now.
func (s *Server) Message(ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(ts); i >= 0 {
		return s.messages[i].clone(), true
	}
	return Message{}, false
}

// Delete removes the message with timestamp ts, as a person deleting it in
// Slack would; it reports whether there was one.
func (s *Server) Delete(ts string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(ts)
	if i < 0 {
		return false
	}
	s.messages = append(s.messages[:i], s.messages[i+1:]...)
	return true
}

// find is the index of the Web API message with timestamp ts, or -1; the
// caller holds mu.
func (s *Server) find(ts string) int {
	for i, m := range s.messages {
		if ts != "" && m.TS == ts {
			return i
		}
	}
	return -1
}

// clone copies m deeply enough that the caller cannot change the fake's record.
func (m Message) clone() Message {
	m.Attachments = append([]slack.Attachment(nil), m.Attachments...)
	m.Versions = append([]Message(nil), m.Versions...)
	return m
}

// nextFailure consumes one programmed failure for method, if any.
func (s *Server) nextFailure(method string) (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.failures, func(f failure) bool { return f.method == "" || f.method == method })
	if i < 0 {
		switch fail, first := s.faults.Draw(); {
		case !fail:
			return failure{}, false
		case first:
			return failure{status: http.StatusInternalServerError}, true
		}
		return failure{status: http.StatusTooManyRequests, retryAfter: time.Second}, true
	}
	f := s.failures[i]
	s.failures = slices.Delete(s.failures, i, i+1)
	return f, true
}

func (s *Server) fail(w http.ResponseWriter, f failure, body string) {
	if f.retryAfter > 0 {
		secs := int64((f.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.WriteHeader(f.status)
	fmt.Fprint(w, body)
}

func (s *Server) logf(format string, args ...any) {
	if s.tb != nil {
		s.tb.Helper()
		s.tb.Logf("slackfake: "+format, args...)
	}
}

// api serves the Web API: chat.postMessage, chat.update,
// chat.scheduleMessage, chat.deleteScheduledMessage and auth.test, and
// unknown_method for the rest.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	if f, ok := s.nextFailure(method); ok {
		s.injectFailure(w, f)
		return
	}
	token, refusal := s.checkCall(method, r)
	if refusal != nil {
		writeJSON(w, refusal)
		return
	}
	switch method {
	case "auth.test":
		writeJSON(w, map[string]any{"ok": true, "url": "https://dsexport-test.slack.com/", "team": Team, "user": BotUser,
			"team_id": TeamID, "user_id": UserID, "bot_id": BotID, "is_enterprise_install": false})
		return
	case "chat.scheduleMessage":
		s.schedule(w, token, r.PostForm)
		return
	case "chat.deleteScheduledMessage":
		s.deleteScheduled(w, r.PostForm)
		return
	}
	channel := r.PostForm.Get("channel")
	var attachments []slack.Attachment
	_, hasAttachments := r.PostForm["attachments"]
	if a := r.PostForm.Get("attachments"); a != "" {
		if err := json.Unmarshal([]byte(a), &attachments); err != nil {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_attachments"})
			return
		}
	}
	if method == "chat.update" {
		s.update(w, channel, r.PostForm.Get("ts"), r.PostForm, attachments, hasAttachments)
		return
	}
	s.post(w, Message{
		Method: method, Token: token, Channel: channel, ChannelID: ChannelID(channel),
		Text: r.PostForm.Get("text"), Attachments: attachments,
		ThreadTS: r.PostForm.Get("thread_ts"), Broadcast: r.PostForm.Get("reply_broadcast") == "true",
	}, r.PostForm.Get("blocks") != "")
}

// injectFailure answers with the failure a test queued: Slack answers an
// error code with a JSON body, 429 with a JSON body, and 5xx with an HTML page.
func (s *Server) injectFailure(w http.ResponseWriter, f failure) {
	if f.code != "" {
		writeJSON(w, map[string]any{"ok": false, "error": f.code})
		return
	}
	body := `<html><body>Internal Server Error</body></html>`
	if f.status == http.StatusTooManyRequests {
		w.Header().Set("Content-Type", "application/json")
		body = `{"ok":false,"error":"ratelimited"}`
	}
	s.fail(w, f, body)
}

// checkCall checks what Slack checks before it acts on a call: the method,
// the HTTP method, the form, the token and the channel. It returns the
// call's token, or the answer refusing the call.
func (s *Server) checkCall(method string, r *http.Request) (string, map[string]any) {
	if !slices.Contains(supported, method) {
		s.logf("%s is not supported by this fake", method)
		return "", map[string]any{
			"ok": false, "error": "unknown_method",
			"detail": "slackfake does not support " + method + "; it supports " + strings.Join(supported, ", "),
		}
	}
	if r.Method != http.MethodPost {
		return "", map[string]any{"ok": false, "error": "invalid_request", "detail": "slackfake takes " + method + " only as POST"}
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return "", map[string]any{"ok": false, "error": "invalid_form_data", "detail": "slackfake decodes only application/x-www-form-urlencoded, got " + ct}
	}
	if err := r.ParseForm(); err != nil {
		return "", map[string]any{"ok": false, "error": "invalid_form_data"}
	}
	// Slack takes the token from the form or from an Authorization header;
	// slack-go sends chat.postMessage's in the form.
	token := r.PostForm.Get("token")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && token == "" {
		token = bearer
	}
	switch {
	case token == "":
		return "", map[string]any{"ok": false, "error": "not_authed"}
	case token != s.token:
		return "", map[string]any{"ok": false, "error": "invalid_auth"}
	}
	if method == "auth.test" {
		return token, nil
	}
	channel := r.PostForm.Get("channel")
	s.mu.Lock()
	known := channel != "" && (s.channels == nil || s.channels[channel] || s.channels[ChannelID(channel)])
	outside := s.outside[ChannelID(channel)]
	s.mu.Unlock()
	// chat.update and chat.deleteScheduledMessage take only a channel ID,
	// not a name.
	byID := method == "chat.update" || method == "chat.deleteScheduledMessage"
	if !known || byID && ChannelID(channel) != channel {
		return "", map[string]any{"ok": false, "error": "channel_not_found"}
	}
	if outside && (method == "chat.postMessage" || method == "chat.scheduleMessage") {
		return "", map[string]any{"ok": false, "error": "not_in_channel"}
	}
	return token, nil
}

// supported are the Web API methods the fake serves.
var supported = []string{"auth.test", "chat.postMessage", "chat.update", "chat.scheduleMessage", "chat.deleteScheduledMessage"}

// schedule serves chat.scheduleMessage: post_at is a Unix time in seconds,
// in the future and at most MaxSchedule ahead; the message is kept, never
// posted, under an ID like Slack's ("Q…").
func (s *Server) schedule(w http.ResponseWriter, token string, form url.Values) {
	postAt, err := strconv.ParseInt(form.Get("post_at"), 10, 64)
	now := time.Now()
	switch {
	case err != nil:
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_time"})
		return
	case postAt <= now.Unix():
		writeJSON(w, map[string]any{"ok": false, "error": "time_in_past"})
		return
	case time.Unix(postAt, 0).After(now.Add(MaxSchedule)):
		writeJSON(w, map[string]any{"ok": false, "error": "time_too_far"})
		return
	}
	channel := form.Get("channel")
	m := Message{Method: "chat.scheduleMessage", Token: token, Channel: channel, ChannelID: ChannelID(channel), Text: form.Get("text")}
	if m.Text == "" && form.Get("attachments") == "" && form.Get("blocks") == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	s.mu.Lock()
	s.checkLimits(m)
	s.posts++
	id := fmt.Sprintf("Q%08d", s.posts)
	m.TS, m.Received = id, now
	if s.scheduled == nil {
		s.scheduled = map[string]Message{}
	}
	s.scheduled[id] = m
	s.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true, "channel": m.ChannelID, "scheduled_message_id": id, "post_at": postAt,
		"message": map[string]any{"text": m.Text, "type": "delayed_message", "bot_id": BotID}})
}

// deleteScheduled serves chat.deleteScheduledMessage: the message must be
// one scheduled in that channel (by ID).
func (s *Server) deleteScheduled(w http.ResponseWriter, form url.Values) {
	id, channel := form.Get("scheduled_message_id"), form.Get("channel")
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.scheduled[id]
	if !ok || m.ChannelID != channel {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_scheduled_message_id"})
		return
	}
	delete(s.scheduled, id)
	writeJSON(w, map[string]any{"ok": true})
}

// post serves chat.postMessage: m is kept with a timestamp of its own, as
// Slack shows it (see shown), and a reply needs the message it replies to
// in the same channel.
func (s *Server) post(w http.ResponseWriter, m Message, hasBlocks bool) {
	if m.Text == "" && len(m.Attachments) == 0 && !hasBlocks {
		writeJSON(w, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	if hasBlocks {
		s.logf("blocks are not checked against Slack's limits by this fake")
	}
	s.mu.Lock()
	s.checkLimits(m)
	m, truncated := shown(m)
	if m.ThreadTS != "" {
		if i := s.find(m.ThreadTS); i < 0 || s.messages[i].ChannelID != m.ChannelID {
			s.mu.Unlock()
			// Slack's own answer varies; the fake refuses, so a reply
			// that would be lost shows in tests.
			writeJSON(w, map[string]any{"ok": false, "error": "thread_not_found",
				"detail": "slackfake has no message " + m.ThreadTS + " in " + m.ChannelID + " to reply to"})
			return
		}
	}
	s.posts++
	m.TS = fmt.Sprintf("1700000000.%06d", s.posts)
	m.Received = time.Now()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	writeJSON(w, withWarning(map[string]any{"ok": true, "channel": m.ChannelID, "ts": m.TS}, truncated))
}

// withWarning adds to answer the warning Slack gives when it cut a
// message's text.
func withWarning(answer map[string]any, truncated bool) map[string]any {
	if truncated {
		answer["warning"] = "message_truncated"
		answer["response_metadata"] = map[string]any{
			"warnings": []string{"message_truncated"},
			"messages": []string{"[WARN] Your message was truncated but still posted. The `text` field accepts up to 40,000 characters."},
		}
	}
	return answer
}

// update serves chat.update: the message channelID/ts takes the new text,
// and the new attachments when the call has some (Slack keeps the old ones
// when the field is left out).
func (s *Server) update(w http.ResponseWriter, channelID, ts string, form url.Values, attachments []slack.Attachment, hasAttachments bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(ts)
	if i < 0 || s.messages[i].ChannelID != channelID {
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	m := &s.messages[i]
	next := m.clone()
	next.Versions, next.Updates = nil, 0
	if _, ok := form["text"]; ok {
		next.Text = form.Get("text")
	}
	if hasAttachments {
		next.Attachments = attachments
	}
	if next.Text == "" && len(next.Attachments) == 0 && form.Get("blocks") == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	// Only what the update sent is checked: what it keeps was checked when sent.
	sent := Message{Method: "chat.update", Attachments: attachments}
	if _, ok := form["text"]; ok {
		sent.Text = next.Text
	}
	s.checkLimits(sent)
	next, truncated := shown(next)
	prev := m.clone()
	prev.Versions, prev.Updates = nil, 0
	next.Versions = append(slices.Clone(m.Versions), prev)
	next.Updates = m.Updates + 1
	*m = next
	writeJSON(w, withWarning(map[string]any{"ok": true, "channel": channelID, "ts": ts, "text": next.Text}, truncated))
}

// webhook serves incoming webhooks, which answer in plain text, not JSON.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.nextFailure("webhook"); ok {
		if f.code != "" {
			// A webhook refuses with a 4xx and the code as plain text.
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, f.code)
			return
		}
		body := "internal_error"
		if f.status == http.StatusNotFound {
			body = "no_service"
		}
		s.fail(w, f, body)
		return
	}
	if r.URL.Path != s.webhookPath {
		// Slack's answer for a webhook that does not exist (or was revoked).
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "no_service")
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, "invalid_method")
		return
	}
	var msg slack.WebhookMessage
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "invalid_payload")
		return
	}
	if msg.Text == "" && len(msg.Attachments) == 0 && msg.Blocks == nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "no_text")
		return
	}
	m := Message{Method: "webhook", Channel: msg.Channel, Text: msg.Text, Attachments: msg.Attachments}
	s.mu.Lock()
	m.Received = time.Now()
	s.checkLimits(m)
	m, _ = shown(m)
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	fmt.Fprint(w, "ok")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
