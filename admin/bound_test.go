package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
)

const huge = 20 << 20 // 20 MB, as measured in issue 10: read, its strings bounded

// overMax is an answer longer than the adapter reads.
const overMax = admin.MaxAnswer + 1<<20

// cutNote is what an answer over MaxAnswer says.
var cutNote = fmt.Sprintf("answer cut: a body over %d bytes, not parsed", admin.MaxAnswer)

// maxErrorLen is the most an adapter error may hold: the API's part
// (poller.MaxErrorText), the name it was about and the retry count.
const maxErrorLen = poller.MaxErrorText + 200

func TestHugeErrorBodyIsCut(t *testing.T) {
	ctx := context.Background()
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL(), fastRetry(&testrig.Sleeps{}))
	page := "<html>" + strings.Repeat("bad gateway ", huge/12)
	pageOver := "<html>" + strings.Repeat("bad gateway ", overMax/12)
	jsonErr := func(message string) string {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": 502, "message": message, "status": "UNAVAILABLE"}})
		return string(b)
	}
	tests := []struct {
		name  string
		step  adminfake.Step
		want  string // in the error's text
		gone  bool
		trans bool
	}{
		{"20 MB page", adminfake.HTTPBody(http.StatusBadGateway, page), "… [cut: ", false, true},
		{"20 MB JSON error", adminfake.HTTPBody(http.StatusBadGateway, jsonErr(strings.Repeat("m", huge))), "… [cut: ", false, true},
		{"page over MaxAnswer", adminfake.HTTPBody(http.StatusBadGateway, pageOver), "… [" + cutNote + "]", false, true},
		{"500 KB message", adminfake.HTTPBody(http.StatusBadGateway, jsonErr(strings.Repeat("m", 500<<10))),
			fmt.Sprintf("… [cut: %d bytes in all]", len("googleapi: Error 502: ")+500<<10), false, true},
		{"404 over MaxAnswer", adminfake.HTTPBody(http.StatusNotFound, pageOver), "… [" + cutNote + "]", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fake.AddOperation("example-proj", tt.step)
			_, err := api.Get(ctx, name)
			if err == nil {
				t.Fatal("Get: no error")
			}
			if n := len(err.Error()); n > maxErrorLen {
				t.Errorf("Get error has %d bytes; want at most %d", n, maxErrorLen)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Get error = %.300q…; want it to say %q", err, tt.want)
			}
			if got := admin.IsTransient(err); got != tt.trans {
				t.Errorf("IsTransient = %v; want %v", got, tt.trans)
			}
			if got := errors.Is(err, poller.ErrOperationGone); got != tt.gone {
				t.Errorf("errors.Is(err, ErrOperationGone) = %v; want %v", got, tt.gone)
			}
		})
	}
}

func TestHugeFailedOperation(t *testing.T) {
	ctx := context.Background()
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL(), fastRetry(&testrig.Sleeps{}))

	// An answer over MaxAnswer is not parsed; the error says so, and is
	// final: the same answer would come again.
	name := fake.AddOperation("example-proj", adminfake.Failed(13, strings.Repeat("e", overMax)))
	_, err := api.Get(ctx, name)
	if err == nil || !strings.Contains(err.Error(), cutNote) || len(err.Error()) > maxErrorLen {
		t.Fatalf("Get of an answer over MaxAnswer = %.300q; want a short error saying the answer was cut", err)
	}
	if admin.IsTransient(err) {
		t.Errorf("IsTransient(cut answer) = true; want false")
	}
	if got := fake.Gets(name); got != 1 {
		t.Errorf("a cut answer was read %d times; want 1", got)
	}

	// Within MaxAnswer (the 20 MB message issue 10 measured), the
	// operation is parsed and its message bounded: the export failed.
	name = fake.AddOperation("example-proj", adminfake.Failed(13, strings.Repeat("e", huge)))
	op, err := api.Get(ctx, name)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if n := len(op.ErrorMessage); n > poller.MaxErrorText {
		t.Errorf("ErrorMessage has %d bytes; want at most %d", n, poller.MaxErrorText)
	}
	if want := fmt.Sprintf("… [cut: %d bytes in all]", huge); !strings.HasSuffix(op.ErrorMessage, want) {
		t.Errorf("ErrorMessage ends %q; want %q", op.ErrorMessage[len(op.ErrorMessage)-40:], want)
	}
	if got, want := poller.Classify(op), poller.OutcomeFailure; got != want || op.ErrorCode != 13 {
		t.Errorf("Classify = %q, code %d; want %q, 13", got, op.ErrorCode, want)
	}
}

// TestAnswerOfExactlyMaxAnswer checks the bound's edge: a body of
// MaxAnswer bytes is read whole, one byte more is cut.
func TestAnswerOfExactlyMaxAnswer(t *testing.T) {
	ctx := context.Background()
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL())
	name := fake.AddOperation("example-proj")
	answer := func(size int) string {
		s := `{"name": "` + name + `", "done": true}`
		return s + strings.Repeat(" ", size-len(s))
	}
	exact := fake.AddOperation("example-proj", adminfake.HTTPBody(http.StatusOK, answer(admin.MaxAnswer)))
	if _, err := api.Get(ctx, exact); err != nil {
		t.Errorf("Get of a %d-byte answer: %v", admin.MaxAnswer, err)
	}
	over := fake.AddOperation("example-proj", adminfake.HTTPBody(http.StatusOK, answer(admin.MaxAnswer+1)))
	if _, err := api.Get(ctx, over); err == nil || !strings.Contains(err.Error(), "answer cut") {
		t.Errorf("Get of a %d-byte answer = %v; want it cut", admin.MaxAnswer+1, err)
	}
}

func TestHugeRefusal(t *testing.T) {
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL(), fastRetry(&testrig.Sleeps{}))
	fake.RefuseExports(http.StatusForbidden, strings.Repeat("no ", huge/3))
	_, err := api.Export(context.Background(), poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://b", Trigger: poller.TriggerCron})
	var re *poller.RefusedError
	if !errors.As(err, &re) || re.Code != 7 {
		t.Fatalf("Export = %v; want a *poller.RefusedError with PERMISSION_DENIED (7)", err)
	}
	if n := len(err.Error()); n > maxErrorLen || !strings.Contains(err.Error(), "… [cut: ") {
		t.Errorf("refusal has %d bytes (%.200q…); want at most %d, saying the message was cut", n, err, maxErrorLen)
	}
}

func TestHugeOperationFieldsAreBounded(t *testing.T) {
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL())
	kinds := make([]string, 150)
	for i := range kinds {
		kinds[i] = fmt.Sprintf("Kind%d", i)
	}
	kinds[0] = strings.Repeat("k", 3000)
	fake.Script(adminfake.Successful(10, 100))
	op, err := api.Export(context.Background(), poller.ExportRequest{
		Project: "example-proj", OutputURLPrefix: "gs://b/" + strings.Repeat("p", 300<<10), Kinds: kinds,
		Trigger: poller.Trigger(strings.Repeat("t", 1000)),
	})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	done, err := api.Get(context.Background(), op.Name)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	for _, o := range []poller.Operation{op, done} {
		if len(o.OutputURLPrefix) > poller.MaxURL || len(o.Trigger) > poller.MaxLabel ||
			len(o.Kinds) > poller.MaxListItems || len(o.Kinds[0]) > poller.MaxKind {
			t.Errorf("operation not bounded: prefix %d bytes, trigger %d, %d kinds, the first %d bytes",
				len(o.OutputURLPrefix), len(o.Trigger), len(o.Kinds), len(o.Kinds[0]))
		}
	}
	if len(done.OutputURL) > poller.MaxURL || !strings.Contains(done.OutputURL, "[cut: ") {
		t.Errorf("OutputURL has %d bytes (%.60q…); want at most %d, saying the cut", len(done.OutputURL), done.OutputURL, poller.MaxURL)
	}
}

// TestForeignAnswerReachesTheDomain checks that the adapter passes an
// answer's own name on, so the poller's CheckAnswer can refuse it.
func TestForeignAnswerReachesTheDomain(t *testing.T) {
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL())
	for _, foreign := range []string{"projects/example-proj/operations/ASAother", "projects/other-proj/operations/ASAother"} {
		name := fake.AddOperation("example-proj", adminfake.Named(foreign, adminfake.Successful(10, 100)))
		op, err := api.Get(context.Background(), name)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if op.Name != foreign {
			t.Errorf("Get(%s).Name = %q; want the answer's %q", name, op.Name, foreign)
		}
		if err := poller.CheckAnswer(name, op); !errors.Is(err, poller.ErrForeignAnswer) {
			t.Errorf("CheckAnswer(%s, answer named %s) = %v; want ErrForeignAnswer", name, foreign, err)
		}
	}
}
