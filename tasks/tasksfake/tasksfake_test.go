package tasksfake_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dsexport/dsexport/tasks/tasksfake"
)

const queue = "projects/p/locations/us-central1/queues/q"

func client(t *testing.T, s *tasksfake.Server) cloudtaskspb.CloudTasksClient {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cloudtaskspb.NewCloudTasksClient(conn)
}

func appEngineTask(name string) *cloudtaskspb.Task {
	return &cloudtaskspb.Task{
		Name: name,
		MessageType: &cloudtaskspb.Task_AppEngineHttpRequest{AppEngineHttpRequest: &cloudtaskspb.AppEngineHttpRequest{
			RelativeUri: "/tasks/poll",
		}},
	}
}

func TestCreateTask(t *testing.T) {
	long := &cloudtaskspb.Task{
		Name:             queue + "/tasks/long",
		DispatchDeadline: durationpb.New(time.Hour),
		MessageType:      &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{Url: "https://x.run.app/tasks/poll"}},
	}
	tests := []struct {
		name     string
		parent   string
		task     *cloudtaskspb.Task
		wantCode codes.Code
	}{
		{"named", queue, appEngineTask(queue + "/tasks/a"), codes.OK},
		{"same name again", queue, appEngineTask(queue + "/tasks/a"), codes.AlreadyExists},
		{"unnamed", queue, appEngineTask(""), codes.OK},
		{"name in another queue", queue, appEngineTask("projects/p/locations/us-central1/queues/r/tasks/a"), codes.InvalidArgument},
		{"name with a slash", queue, appEngineTask(queue + "/tasks/a/b"), codes.InvalidArgument},
		{"queue not added", "projects/p/locations/us-central1/queues/r", appEngineTask(""), codes.NotFound},
		{"bad parent", "queues/q", appEngineTask(""), codes.InvalidArgument},
		{"no target", queue, &cloudtaskspb.Task{}, codes.InvalidArgument},
		{"http deadline over 30m", queue, long, codes.InvalidArgument},
	}
	s := tasksfake.New(t)
	s.AddQueue(queue)
	c := client(t, s)
	created := 0
	for _, tt := range tests {
		_, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: tt.parent, Task: tt.task})
		if got, want := status.Code(err), tt.wantCode; got != want {
			t.Fatalf("%s: CreateTask = %v; want code %v", tt.name, err, want)
		}
		if err == nil {
			created++
		}
		if got, want := len(s.Tasks()), created; got != want {
			t.Fatalf("%s: fake has %d tasks; want %d", tt.name, got, want)
		}
	}
	if got, want := s.Calls(), len(tests); got != want {
		t.Fatalf("Calls() = %d; want %d", got, want)
	}
}

func TestFailNext(t *testing.T) {
	s := tasksfake.New(t)
	c := client(t, s)
	s.FailNext(2, codes.ResourceExhausted)
	wants := []codes.Code{codes.ResourceExhausted, codes.ResourceExhausted, codes.OK}
	for i, want := range wants {
		_, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: queue, Task: appEngineTask("")})
		if got := status.Code(err); got != want {
			t.Fatalf("call %d: CreateTask = %v; want code %v", i, err, want)
		}
	}
}

func TestUnsupportedCallSaysSo(t *testing.T) {
	s := tasksfake.New(t)
	_, err := client(t, s).DeleteQueue(context.Background(), &cloudtaskspb.DeleteQueueRequest{Name: queue})
	if got, want := status.Code(err), codes.Unimplemented; got != want {
		t.Fatalf("DeleteQueue = %v; want code %v", err, want)
	}
	if got, want := status.Convert(err).Message(), "not supported by the fake"; !strings.Contains(got, want) {
		t.Fatalf("DeleteQueue message = %q; want it to contain %q", got, want)
	}
}

func TestGetQueue(t *testing.T) {
	s := tasksfake.New(t)
	c := client(t, s)
	ctx := context.Background()
	q, err := c.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: queue})
	if err != nil || q.GetName() != queue || q.GetState() != cloudtaskspb.Queue_RUNNING {
		t.Errorf("before AddQueue: %v, %v; want %s running", q, err, queue)
	}
	s.AddQueue(queue)
	other := "projects/p/locations/us-central1/queues/r"
	if _, err := c.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: other}); status.Code(err) != codes.NotFound {
		t.Errorf("queue not added: %v; want NotFound", err)
	}
	if _, err := c.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: "queues/q"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad name: %v; want InvalidArgument", err)
	}
	s.SetPaused(queue)
	if q, err := c.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: queue}); err != nil || q.GetState() != cloudtaskspb.Queue_PAUSED {
		t.Errorf("paused: %v, %v; want PAUSED", q, err)
	}
}
