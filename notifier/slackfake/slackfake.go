// Package slackfake is an in-process Slack for tests: a real HTTP server that
// speaks the wire formats of chat.postMessage and incoming webhooks, records
// what it receives, and fails on demand the way Slack does.
package slackfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// Message is one message the fake accepted.
type Message struct {
	// Method is "chat.postMessage" or "webhook".
	Method string
	// Token is the token the Web API call authenticated with ("" for webhooks).
	Token   string
	Channel string
	Text    string
	// Attachments are decoded from the JSON Slack receives (a form field for
	// chat.postMessage, part of the body for webhooks).
	Attachments []slack.Attachment
	// TS is the timestamp the fake answered with ("" for webhooks).
	TS string
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
	failures []failure
	// faultRate and rng inject random failures (InjectFaults).
	faultRate float64
	rng       *mrand.Rand
	injected  int
}

// InjectFaults makes each post fail with probability rate, half of them
// with 500 and half with 429 and a Retry-After of one second, drawn from a
// generator seeded with seed so a run can be repeated.
func (s *Server) InjectFaults(rate float64, seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultRate, s.rng = rate, mrand.New(mrand.NewPCG(seed, seed^0x5eed))
}

// Injected returns how many failures InjectFaults caused so far.
func (s *Server) Injected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.injected
}

// failure is one programmed failed answer.
type failure struct {
	status     int
	retryAfter time.Duration
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

// SetChannels limits chat.postMessage to the given channels (names or IDs);
// others answer channel_not_found. Without it every channel exists.
func (s *Server) SetChannels(channels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels = make(map[string]bool)
	for _, c := range channels {
		s.channels[c] = true
	}
}

// FailNext makes the next n requests (Web API or webhook) answer with HTTP
// status. A positive retryAfter is sent as Retry-After in whole seconds, as
// Slack does with 429.
func (s *Server) FailNext(n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: status, retryAfter: retryAfter})
	}
}

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// nextFailure consumes one programmed failure, if any.
func (s *Server) nextFailure() (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		if s.rng != nil && s.rng.Float64() < s.faultRate {
			s.injected++
			if s.rng.IntN(2) == 0 {
				return failure{status: http.StatusInternalServerError}, true
			}
			return failure{status: http.StatusTooManyRequests, retryAfter: time.Second}, true
		}
		return failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
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

// api serves the Web API: chat.postMessage, and unknown_method for the rest.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	if f, ok := s.nextFailure(); ok {
		// Slack answers 429 with a JSON body, and 5xx with an HTML page.
		body := `<html><body>Internal Server Error</body></html>`
		if f.status == http.StatusTooManyRequests {
			w.Header().Set("Content-Type", "application/json")
			body = `{"ok":false,"error":"ratelimited"}`
		}
		s.fail(w, f, body)
		return
	}
	if method != "chat.postMessage" {
		s.logf("%s is not supported by this fake", method)
		writeJSON(w, map[string]any{
			"ok": false, "error": "unknown_method",
			"detail": "slackfake does not support " + method + "; it supports chat.postMessage",
		})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_request", "detail": "slackfake takes chat.postMessage only as POST"})
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_form_data", "detail": "slackfake decodes only application/x-www-form-urlencoded, got " + ct})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	// Slack takes the token from the form or from an Authorization header;
	// slack-go sends chat.postMessage's in the form.
	token := r.PostForm.Get("token")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && token == "" {
		token = bearer
	}
	switch {
	case token == "":
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	case token != s.token:
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	channel := r.PostForm.Get("channel")
	s.mu.Lock()
	known := channel != "" && (s.channels == nil || s.channels[channel])
	s.mu.Unlock()
	if !known {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	m := Message{Method: method, Token: token, Channel: channel, Text: r.PostForm.Get("text")}
	if a := r.PostForm.Get("attachments"); a != "" {
		if err := json.Unmarshal([]byte(a), &m.Attachments); err != nil {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_attachments"})
			return
		}
	}
	if m.Text == "" && len(m.Attachments) == 0 && r.PostForm.Get("blocks") == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	s.mu.Lock()
	m.TS = fmt.Sprintf("1700000000.%06d", len(s.messages)+1)
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true, "channel": channel, "ts": m.TS})
}

// webhook serves incoming webhooks, which answer in plain text, not JSON.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.nextFailure(); ok {
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
	s.mu.Lock()
	s.messages = append(s.messages, Message{Method: "webhook", Channel: msg.Channel, Text: msg.Text, Attachments: msg.Attachments})
	s.mu.Unlock()
	fmt.Fprint(w, "ok")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
