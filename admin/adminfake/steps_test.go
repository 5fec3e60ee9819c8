package adminfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get reads the operation name from s and returns the status, the
// Content-Type and the body.
func get(t *testing.T, s *Server, name string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(s.URL() + "v1/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// answer decodes the operation's name and done from an answer.
func answer(t *testing.T, body []byte) (name string, done bool) {
	t.Helper()
	var op struct {
		Name string `json:"name"`
		Done bool   `json:"done"`
	}
	if err := json.Unmarshal(body, &op); err != nil {
		t.Fatalf("answer %.200s: %v", body, err)
	}
	return op.Name, op.Done
}

func TestHTTPBodyIsAnsweredAsItIs(t *testing.T) {
	s := New(t)
	page := "<html>" + strings.Repeat("x", 1<<20) + "</html>"
	name := s.AddOperation("p", HTTPBody(http.StatusBadGateway, page))
	status, ctype, body := get(t, s, name)
	if status != http.StatusBadGateway || !strings.HasPrefix(ctype, "text/html") || string(body) != page {
		t.Errorf("GET = %d %q with %d bytes; want 502 text/html with the %d bytes of the page", status, ctype, len(body), len(page))
	}
}

func TestAnswerAsNamesAnotherOperationAndDoesNotEndOurs(t *testing.T) {
	s := New(t)
	const other = "projects/q/operations/ASAother"
	name := s.AddOperation("p", AnswerAs(other, Successful(1, 1)), Successful(2, 2))
	_, _, body := get(t, s, name)
	if got, done := answer(t, body); got != other || !done {
		t.Errorf("first answer names %q (done %v); want %q, done", got, done, other)
	}
	if at := s.DoneAt(name); !at.IsZero() {
		t.Errorf("DoneAt after a foreign answer = %v; want zero: %s did not answer", at, name)
	}
	before := time.Now()
	_, _, body = get(t, s, name)
	if got, done := answer(t, body); got != name || !done {
		t.Errorf("second answer names %q (done %v); want %q, done", got, done, name)
	}
	if at := s.DoneAt(name); at.Before(before) || at.After(time.Now()) {
		t.Errorf("DoneAt = %v; want the time of the second GET (after %v)", at, before)
	}
}

func TestUntilEndsAtItsOwnTime(t *testing.T) {
	s := New(t)
	const d = 200 * time.Millisecond
	created := time.Now()
	name := s.AddOperation("p", Until(d, Running("PROCESSING", 1, 2, 1, 2), Successful(2, 2)))
	_, _, body := get(t, s, name)
	if _, done := answer(t, body); done {
		t.Fatal("answered done before its time")
	}
	if at := s.DoneAt(name); !at.IsZero() {
		t.Errorf("DoneAt while running = %v; want zero", at)
	}
	time.Sleep(2 * d)
	_, _, body = get(t, s, name)
	if _, done := answer(t, body); !done {
		t.Fatal("not done after its time")
	}
	// The end is when its time ran out, not when it was read.
	if at := s.DoneAt(name); at.Before(created.Add(d)) || at.After(time.Now().Add(-d)) {
		t.Errorf("DoneAt = %v; want about %v after the export call at %v", at, d, created)
	}
}

func TestScriptEachPicksByCall(t *testing.T) {
	s := New(t)
	s.ScriptEach(func(call ExportCall) []Step {
		if call.EntityFilter.Kinds[0] == "Fails" {
			return []Step{Failed(7, "denied")}
		}
		return nil
	})
	for _, kind := range []string{"Fails", "Default"} {
		resp, err := http.Post(s.URL()+"v1/projects/p:export", "application/json",
			strings.NewReader(`{"outputUrlPrefix":"gs://b","entityFilter":{"kinds":["`+kind+`"]}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	names := s.Names()
	if len(names) != 2 {
		t.Fatalf("Names = %v; want 2", names)
	}
	for i, want := range []string{"Fails", "Default"} {
		call, ok := s.Call(names[i])
		if !ok || call.EntityFilter.Kinds[0] != want {
			t.Errorf("Call(%s) = %+v, %v; want the call of kind %s", names[i], call, ok, want)
		}
	}
	_, _, body := get(t, s, names[0])
	if _, done := answer(t, body); !done {
		t.Errorf("%s (kind Fails) answered %.200s; want its own script, done at once", names[0], body)
	}
	_, _, body = get(t, s, names[1])
	if _, done := answer(t, body); done {
		t.Errorf("%s (kind Default) answered done at once; want the default script", names[1])
	}
}

func TestAnswerAsAKnownOperationAnswersAsIt(t *testing.T) {
	s := New(t)
	sibling := s.AddOperation("p")
	name := s.AddOperation("p", AnswerAs(sibling, Successful(1, 1)))
	s.mu.Lock()
	s.ops[sibling].call.OutputURLPrefix = "gs://sibling-bucket"
	s.mu.Unlock()
	_, _, body := get(t, s, name)
	if got, _ := answer(t, body); got != sibling {
		t.Errorf("answer names %q; want %q", got, sibling)
	}
	if !strings.Contains(string(body), "gs://sibling-bucket") {
		t.Errorf("answer %.300s; want the sibling's own prefix in it", body)
	}
}
