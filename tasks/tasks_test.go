package tasks_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/tasks"
	"github.com/dsexport/dsexport/tasks/tasksfake"
)

const (
	queue  = "projects/my-app/locations/us-central1/queues/dsexport-poll"
	opName = "projects/my-app/operations/ASA3NDEwOTg1NzMyChp0bHVhZmVkBxJsYXJ0bmVjc3Utc2Jvai1uaW1kYRQKLRI"
	// opHash is the first 32 hex digits of sha256(opName). It is written out
	// rather than computed so that a change of the naming scheme, which would
	// stop deduplication across a deploy, fails this test.
	opHash  = "593e51aeb79ea76a05371f26b1cb53cf"
	body    = `{"name":"` + opName + `"}`
	runURL  = "https://dsexport-abc123-uc.a.run.app"
	invoker = "dsexport-tasks@my-app.iam.gserviceaccount.com"
)

func appEngineConfig() tasks.Config {
	return tasks.Config{Queue: queue, Target: tasks.AppEngine, Service: "dsexport", Version: "20260101t120000"}
}

func httpConfig() tasks.Config {
	return tasks.Config{Queue: queue, Target: tasks.HTTP, URL: runURL, ServiceAccount: invoker}
}

// newDispatcher connects a real Dispatcher to fake over gRPC.
func newDispatcher(t *testing.T, fake *tasksfake.Server, cfg tasks.Config) *tasks.Dispatcher {
	t.Helper()
	cfg.Endpoint = fake.Addr()
	d, err := tasks.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tasks.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDispatch(t *testing.T) {
	json := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name  string
		cfg   func(*tasks.Config)
		base  func() tasks.Config
		polls int
		want  *cloudtaskspb.Task
	}{
		{
			name: "app engine",
			base: appEngineConfig,
			want: &cloudtaskspb.Task{
				Name:             queue + "/tasks/" + opHash + "-p0",
				DispatchDeadline: durationpb.New(24 * time.Hour),
				MessageType: &cloudtaskspb.Task_AppEngineHttpRequest{AppEngineHttpRequest: &cloudtaskspb.AppEngineHttpRequest{
					HttpMethod:       cloudtaskspb.HttpMethod_POST,
					AppEngineRouting: &cloudtaskspb.AppEngineRouting{Service: "dsexport", Version: "20260101t120000"},
					RelativeUri:      "/tasks/poll",
					Headers:          json,
					Body:             []byte(body),
				}},
			},
		},
		{
			name:  "app engine continuation with its own deadline",
			base:  appEngineConfig,
			cfg:   func(c *tasks.Config) { c.Version = ""; c.DispatchDeadline = 23*time.Hour + 5*time.Minute },
			polls: 1380,
			want: &cloudtaskspb.Task{
				Name:             queue + "/tasks/" + opHash + "-p1380",
				DispatchDeadline: durationpb.New(23*time.Hour + 5*time.Minute),
				MessageType: &cloudtaskspb.Task_AppEngineHttpRequest{AppEngineHttpRequest: &cloudtaskspb.AppEngineHttpRequest{
					HttpMethod:       cloudtaskspb.HttpMethod_POST,
					AppEngineRouting: &cloudtaskspb.AppEngineRouting{Service: "dsexport"},
					RelativeUri:      "/tasks/poll",
					Headers:          json,
					Body:             []byte(body),
				}},
			},
		},
		{
			name: "cloud run, audience defaults to the URL",
			base: httpConfig,
			want: &cloudtaskspb.Task{
				Name:             queue + "/tasks/" + opHash + "-p0",
				DispatchDeadline: durationpb.New(30 * time.Minute),
				MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
					HttpMethod: cloudtaskspb.HttpMethod_POST,
					Url:        runURL + "/tasks/poll",
					Headers:    json,
					Body:       []byte(body),
					AuthorizationHeader: &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{
						ServiceAccountEmail: invoker,
						Audience:            runURL,
					}},
				}},
			},
		},
		{
			name: "cloud run, trailing slash, own audience and deadline",
			base: httpConfig,
			cfg: func(c *tasks.Config) {
				c.URL = runURL + "/"
				c.Audience = "dsexport-poll"
				c.DispatchDeadline = 26 * time.Minute
			},
			polls: 25,
			want: &cloudtaskspb.Task{
				Name:             queue + "/tasks/" + opHash + "-p25",
				DispatchDeadline: durationpb.New(26 * time.Minute),
				MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
					HttpMethod: cloudtaskspb.HttpMethod_POST,
					Url:        runURL + "/tasks/poll",
					Headers:    json,
					Body:       []byte(body),
					AuthorizationHeader: &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{
						ServiceAccountEmail: invoker,
						Audience:            "dsexport-poll",
					}},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tasksfake.New(t)
			fake.AddQueue(queue)
			cfg := tt.base()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			d := newDispatcher(t, fake, cfg)
			if err := d.Dispatch(context.Background(), poller.Handoff{Name: opName, Polls: tt.polls}); err != nil {
				t.Fatalf("Dispatch(%q, %d) = %v; want nil", opName, tt.polls, err)
			}
			got := fake.Tasks()
			if got, want := len(got), 1; got != want {
				t.Fatalf("fake has %d tasks; want %d", got, want)
			}
			task := got[0]
			// The body is checked on its own too, so that a failure names
			// the part the poll handler depends on in plain text.
			gotBody := task.GetAppEngineHttpRequest().GetBody()
			if task.GetHttpRequest() != nil {
				gotBody = task.GetHttpRequest().GetBody()
			}
			if got, want := string(gotBody), body; got != want {
				t.Fatalf("task body = %s; want %s", got, want)
			}
			// The times are the server's; everything else is the client's.
			task.CreateTime, task.ScheduleTime = nil, nil
			if !proto.Equal(task, tt.want) {
				t.Fatalf("created task:\n%s\nwant:\n%s", prototext.Format(task), prototext.Format(tt.want))
			}
		})
	}
}

func TestTaskName(t *testing.T) {
	shape := regexp.MustCompile(`^` + regexp.QuoteMeta(queue) + `/tasks/[0-9a-f]{32}-p[0-9]+$`)
	tests := []struct {
		name  string
		polls int
		want  string
	}{
		{opName, 0, queue + "/tasks/" + opHash + "-p0"},
		{opName, 1380, queue + "/tasks/" + opHash + "-p1380"},
		{"projects/my-app/operations/ASA3NDEwOTg1NzMyChp0bHVhZmVkBxJsYXJ0bmVjc3Utc2Jvai1uaW1kYRQKLRJ", 0, ""},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		// Two dispatchers on two fakes stand for two processes: the name
		// must not depend on anything but the operation and the poll count.
		var names []string
		for range 2 {
			fake := tasksfake.New(t)
			d := newDispatcher(t, fake, appEngineConfig())
			if err := d.Dispatch(context.Background(), poller.Handoff{Name: tt.name, Polls: tt.polls}); err != nil {
				t.Fatalf("Dispatch(%q, %d) = %v", tt.name, tt.polls, err)
			}
			names = append(names, fake.Tasks()[0].GetName())
		}
		if got, want := names[1], names[0]; got != want {
			t.Fatalf("Dispatch(%q, %d) named the task %q, then %q; want the same name", tt.name, tt.polls, want, got)
		}
		if !shape.MatchString(names[0]) {
			t.Fatalf("Dispatch(%q, %d) named the task %q; want %s", tt.name, tt.polls, names[0], shape)
		}
		if tt.want != "" {
			if got, want := names[0], tt.want; got != want {
				t.Fatalf("Dispatch(%q, %d) named the task %q; want %q", tt.name, tt.polls, got, want)
			}
		}
		if got, want := names[0], queue+"/tasks/"+tasks.TaskID(poller.Handoff{Name: tt.name, Polls: tt.polls}); got != want {
			t.Fatalf("task name %q; TaskID gives %q", got, want)
		}
		if seen[names[0]] {
			t.Fatalf("Dispatch(%q, %d) named the task %q, like an earlier (operation, polls)", tt.name, tt.polls, names[0])
		}
		seen[names[0]] = true
	}
}

func TestDispatchDeduplicates(t *testing.T) {
	fake := tasksfake.New(t)
	d := newDispatcher(t, fake, httpConfig())
	ctx := context.Background()
	steps := []struct {
		polls     int
		wantTasks int
	}{
		{0, 1},
		{0, 1}, // A repeated hand-off: Cloud Tasks answers AlreadyExists.
		{1380, 2},
		{1380, 2},
		{0, 2},
	}
	for i, s := range steps {
		if err := d.Dispatch(ctx, poller.Handoff{Name: opName, Polls: s.polls}); err != nil {
			t.Fatalf("step %d: Dispatch(%q, %d) = %v; want nil", i, opName, s.polls, err)
		}
		if got, want := len(fake.Tasks()), s.wantTasks; got != want {
			t.Fatalf("step %d: after Dispatch(%q, %d) the fake has %d tasks; want %d", i, opName, s.polls, got, want)
		}
	}
	if got, want := fake.Calls(), len(steps); got != want {
		t.Fatalf("fake received %d calls; want %d (a deduplicated task is not retried)", got, want)
	}
}

func TestDispatchRefusesBadInput(t *testing.T) {
	tests := []struct {
		h       poller.Handoff
		wantErr string
	}{
		{poller.Handoff{Name: ""}, "is not projects/{project}/operations/{id}"},
		{poller.Handoff{Name: "ASA3NDEwOTg1NzMy"}, "is not projects/{project}/operations/{id}"},
		{poller.Handoff{Name: "projects/my-app/operations/a/../../queues/x"}, "is not projects/{project}/operations/{id}"},
		{poller.Handoff{Name: "projects/my-app/operations/abc\n"}, "is not projects/{project}/operations/{id}"},
		{poller.Handoff{Name: opName, Polls: -1}, "may be negative"},
		{poller.Handoff{Name: opName, Round: -3}, "may be negative"},
	}
	for _, tt := range tests {
		fake := tasksfake.New(t)
		d := newDispatcher(t, fake, appEngineConfig())
		err := d.Dispatch(context.Background(), tt.h)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Fatalf("Dispatch(%+v) = %v; want an error containing %q", tt.h, err, tt.wantErr)
		}
		if got, want := fake.Calls(), 0; got != want {
			t.Fatalf("Dispatch(%+v) made %d calls; want %d", tt.h, got, want)
		}
	}
}

// TestTaskID pins the task names: they must not change across releases, or
// a hand-off repeated across a deploy would not be deduplicated.
func TestTaskID(t *testing.T) {
	for _, tt := range []struct {
		h    poller.Handoff
		want string
	}{
		{poller.Handoff{Name: opName}, "-p0"},
		{poller.Handoff{Name: opName, Polls: 12}, "-p12"},
		{poller.Handoff{Name: opName, Polls: 12, Resume: true, Round: 345}, "-p12-r345"},
		{poller.Handoff{Name: opName, Polls: 12, Resume: true}, "-p12-r0"},
	} {
		got := tasks.TaskID(tt.h)
		if !strings.HasSuffix(got, tt.want) || len(got) != 32+len(tt.want) {
			t.Errorf("TaskID(%+v) = %q; want 32 hex digits and %q", tt.h, got, tt.want)
		}
	}
}

func TestDispatchServerErrors(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		code      codes.Code
		queue     string // the queue the fake has, when not the dispatcher's
		wantCode  codes.Code
		wantCalls int
		wantTasks int
	}{
		// A named task makes CreateTask safe to retry, so one transient
		// failure is absorbed.
		{name: "one unavailable, then created", failures: 1, code: codes.Unavailable, wantCode: codes.OK, wantCalls: 2, wantTasks: 1},
		{name: "unavailable throughout", failures: 10, code: codes.Unavailable, wantCode: codes.Unavailable, wantCalls: 3},
		{name: "permission denied is not retried", failures: 1, code: codes.PermissionDenied, wantCode: codes.PermissionDenied, wantCalls: 1},
		{name: "queue missing", queue: "projects/my-app/locations/us-central1/queues/other", wantCode: codes.NotFound, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tasksfake.New(t)
			if tt.queue != "" {
				fake.AddQueue(tt.queue)
			}
			fake.FailNext(tt.failures, tt.code)
			d := newDispatcher(t, fake, appEngineConfig())
			err := d.Dispatch(context.Background(), poller.Handoff{Name: opName, Polls: 0})
			if got, want := status.Code(err), tt.wantCode; got != want {
				t.Fatalf("Dispatch = %v (code %v); want code %v", err, got, want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "enqueue poll of "+opName+": ") {
				t.Fatalf("Dispatch = %q; want it to start with %q", err, "enqueue poll of "+opName+": ")
			}
			if got, want := fake.Calls(), tt.wantCalls; got != want {
				t.Fatalf("fake received %d calls; want %d", got, want)
			}
			if got, want := len(fake.Tasks()), tt.wantTasks; got != want {
				t.Fatalf("fake has %d tasks; want %d", got, want)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		base    func() tasks.Config
		edit    func(*tasks.Config)
		wantErr string // empty: valid
	}{
		{"app engine", appEngineConfig, nil, ""},
		{"http", httpConfig, nil, ""},
		{"plain http for a local run", httpConfig, func(c *tasks.Config) { c.URL = "http://127.0.0.1:8080" }, ""},
		{"domain-scoped project", appEngineConfig, func(c *tasks.Config) { c.Queue = "projects/example.com:my-app/locations/europe-west1/queues/q" }, ""},
		{"app engine shortest deadline", appEngineConfig, func(c *tasks.Config) { c.DispatchDeadline = 15 * time.Second }, ""},
		{"http longest deadline", httpConfig, func(c *tasks.Config) { c.DispatchDeadline = 30 * time.Minute }, ""},

		{"empty queue", appEngineConfig, func(c *tasks.Config) { c.Queue = "" }, "DSEXPORT_TASKS_QUEUE"},
		{"bare queue id", appEngineConfig, func(c *tasks.Config) { c.Queue = "dsexport-poll" }, "DSEXPORT_TASKS_QUEUE"},
		{"queue without location", appEngineConfig, func(c *tasks.Config) { c.Queue = "projects/my-app/queues/q" }, "DSEXPORT_TASKS_QUEUE"},
		{"queue with a task", appEngineConfig, func(c *tasks.Config) { c.Queue = queue + "/tasks/t" }, "DSEXPORT_TASKS_QUEUE"},
		{"queue with a trailing slash", appEngineConfig, func(c *tasks.Config) { c.Queue = queue + "/" }, "DSEXPORT_TASKS_QUEUE"},
		{"queue id with underscore", appEngineConfig, func(c *tasks.Config) { c.Queue = "projects/p/locations/l/queues/poll_q" }, "DSEXPORT_TASKS_QUEUE"},
		{"no target", appEngineConfig, func(c *tasks.Config) { c.Target = "" }, "neither"},
		{"unknown target", appEngineConfig, func(c *tasks.Config) { c.Target = "pubsub" }, "neither"},
		{"app engine without service", appEngineConfig, func(c *tasks.Config) { c.Service = "" }, "GAE_SERVICE"},
		{"app engine deadline too short", appEngineConfig, func(c *tasks.Config) { c.DispatchDeadline = 14 * time.Second }, "dispatch deadline"},
		{"app engine deadline too long", appEngineConfig, func(c *tasks.Config) { c.DispatchDeadline = 25 * time.Hour }, "dispatch deadline"},
		{"negative deadline", appEngineConfig, func(c *tasks.Config) { c.DispatchDeadline = -time.Minute }, "dispatch deadline"},
		{"http without URL", httpConfig, func(c *tasks.Config) { c.URL = "" }, "DSEXPORT_TASKS_URL"},
		{"http relative URL", httpConfig, func(c *tasks.Config) { c.URL = "dsexport-abc123-uc.a.run.app" }, "DSEXPORT_TASKS_URL"},
		{"http ftp URL", httpConfig, func(c *tasks.Config) { c.URL = "ftp://dsexport.example.com" }, "DSEXPORT_TASKS_URL"},
		{"http URL with query", httpConfig, func(c *tasks.Config) { c.URL = runURL + "?x=1" }, "DSEXPORT_TASKS_URL"},
		{"http URL unparsable", httpConfig, func(c *tasks.Config) { c.URL = "https://[::1" }, "DSEXPORT_TASKS_URL"},
		{"http without service account", httpConfig, func(c *tasks.Config) { c.ServiceAccount = "" }, "DSEXPORT_TASKS_SERVICE_ACCOUNT"},
		{"http service account not an email", httpConfig, func(c *tasks.Config) { c.ServiceAccount = "dsexport-tasks" }, "DSEXPORT_TASKS_SERVICE_ACCOUNT"},
		{"http deadline of an app engine task", httpConfig, func(c *tasks.Config) { c.DispatchDeadline = time.Hour }, "dispatch deadline"},
		{"http deadline too short", httpConfig, func(c *tasks.Config) { c.DispatchDeadline = time.Second }, "dispatch deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.base()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			// The endpoint keeps New from looking for Google credentials;
			// nothing is dialled until the first call.
			cfg.Endpoint = "127.0.0.1:1"
			d, err := tasks.New(context.Background(), cfg)
			if d != nil {
				defer d.Close()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%+v) = %v; want nil", cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%+v) = %v; want an error naming %q", cfg, err, tt.wantErr)
			}
		})
	}
}
