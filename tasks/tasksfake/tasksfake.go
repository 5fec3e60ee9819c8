// Package tasksfake is an in-memory Cloud Tasks for tests: a CloudTasksServer
// on a real gRPC server that keeps the tasks CreateTask is given, checks them
// the way Cloud Tasks does, and deduplicates them by name.
package tasksfake

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Server is a fake Cloud Tasks service. Only CreateTask and GetQueue are
// supported; every other call answers Unimplemented and says so.
type Server struct {
	cloudtaskspb.UnimplementedCloudTasksServer

	addr string

	mu       sync.Mutex
	tasks    []*cloudtaskspb.Task
	names    map[string]bool
	queues   map[string]bool // nil: every well-formed queue exists
	paused   map[string]bool
	calls    int
	failLeft int
	failCode codes.Code
	nextID   int
}

// New starts a fake on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tasksfake: listen: %v", err)
	}
	s := &Server{addr: lis.Addr().String(), names: map[string]bool{}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	cloudtaskspb.RegisterCloudTasksServer(srv, s)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return s
}

// Addr is the fake's host:port, for tasks.Config.Endpoint.
func (s *Server) Addr() string { return s.addr }

// AddQueue makes queue exist. Until the first AddQueue every well-formed
// queue exists; after it, CreateTask on any other queue answers NotFound, as
// Cloud Tasks does.
func (s *Server) AddQueue(queue string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues == nil {
		s.queues = map[string]bool{}
	}
	s.queues[queue] = true
}

// SetPaused makes GetQueue answer queue as PAUSED (CreateTask still
// accepts tasks there, as Cloud Tasks does: a paused queue keeps them).
func (s *Server) SetPaused(queue string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused == nil {
		s.paused = map[string]bool{}
	}
	s.paused[queue] = true
}

// GetQueue answers a queue that exists (see AddQueue) with its name and
// state, NotFound for another, as Cloud Tasks does.
func (s *Server) GetQueue(ctx context.Context, req *cloudtaskspb.GetQueueRequest) (*cloudtaskspb.Queue, error) {
	if !queueRE.MatchString(req.GetName()) {
		return nil, status.Errorf(codes.InvalidArgument, "name %q is not projects/P/locations/L/queues/Q", req.GetName())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues != nil && !s.queues[req.GetName()] {
		return nil, status.Errorf(codes.NotFound, "Requested entity was not found.")
	}
	q := &cloudtaskspb.Queue{Name: req.GetName(), State: cloudtaskspb.Queue_RUNNING}
	if s.paused[req.GetName()] {
		q.State = cloudtaskspb.Queue_PAUSED
	}
	return q, nil
}

// FailNext makes the next n calls answer code without doing anything.
func (s *Server) FailNext(n int, code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLeft, s.failCode = n, code
}

// Tasks returns copies of the tasks created so far, in creation order.
func (s *Server) Tasks() []*cloudtaskspb.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*cloudtaskspb.Task, len(s.tasks))
	for i, t := range s.tasks {
		out[i] = proto.Clone(t).(*cloudtaskspb.Task)
	}
	return out
}

// Calls is how many calls the fake received, failed ones included: a test of
// retries counts attempts with it.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// intercept counts every call, fails it when FailNext asked, and rewrites the
// embedded server's Unimplemented answer so a test reading it knows the fake,
// not Cloud Tasks, is missing the call.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.calls++
	if s.failLeft > 0 {
		s.failLeft--
		code := s.failCode
		s.mu.Unlock()
		return nil, status.Errorf(code, "tasksfake: failing %s as told by FailNext", info.FullMethod)
	}
	s.mu.Unlock()
	resp, err := handler(ctx, req)
	if status.Code(err) == codes.Unimplemented {
		return nil, status.Errorf(codes.Unimplemented, "tasksfake: %s is not supported by the fake", info.FullMethod)
	}
	return resp, err
}

var (
	queueRE  = regexp.MustCompile(`^projects/[A-Za-z0-9.:-]+/locations/[A-Za-z0-9-]+/queues/[A-Za-z0-9-]{1,100}$`)
	taskIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)
)

// CreateTask stores the task after the checks Cloud Tasks makes that a test
// of a client can trip over: the queue, the task name, the target and its
// dispatch deadline. A name already taken answers AlreadyExists.
func (s *Server) CreateTask(ctx context.Context, req *cloudtaskspb.CreateTaskRequest) (*cloudtaskspb.Task, error) {
	if !queueRE.MatchString(req.GetParent()) {
		return nil, status.Errorf(codes.InvalidArgument, "parent %q is not projects/P/locations/L/queues/Q", req.GetParent())
	}
	task := proto.Clone(req.GetTask()).(*cloudtaskspb.Task)
	if task == nil {
		return nil, status.Error(codes.InvalidArgument, "task is required")
	}
	if err := checkTask(req.GetParent(), task); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues != nil && !s.queues[req.GetParent()] {
		return nil, status.Errorf(codes.NotFound, "queue %s does not exist", req.GetParent())
	}
	if task.Name == "" {
		s.nextID++
		task.Name = fmt.Sprintf("%s/tasks/%d", req.GetParent(), s.nextID)
	}
	if s.names[task.Name] {
		return nil, status.Errorf(codes.AlreadyExists, "Requested entity already exists: task %s", task.Name)
	}
	now := timestamppb.New(time.Now())
	task.CreateTime = now
	if task.ScheduleTime == nil {
		task.ScheduleTime = now
	}
	s.names[task.Name] = true
	s.tasks = append(s.tasks, task)
	return proto.Clone(task).(*cloudtaskspb.Task), nil
}

// checkTask validates task as Cloud Tasks would before creating it in parent.
func checkTask(parent string, task *cloudtaskspb.Task) error {
	if task.Name != "" {
		id, ok := strings.CutPrefix(task.Name, parent+"/tasks/")
		if !ok || !taskIDRE.MatchString(id) {
			return status.Errorf(codes.InvalidArgument, "task name %q is not %s/tasks/ID with ID of letters, digits, - and _", task.Name, parent)
		}
	}
	const lo = 15 * time.Second
	var hi time.Duration
	switch m := task.MessageType.(type) {
	case *cloudtaskspb.Task_AppEngineHttpRequest:
		hi = 24*time.Hour + 15*time.Second
		if uri := m.AppEngineHttpRequest.GetRelativeUri(); uri != "" && !strings.HasPrefix(uri, "/") {
			return status.Errorf(codes.InvalidArgument, "relative_uri %q must begin with /", uri)
		}
	case *cloudtaskspb.Task_HttpRequest:
		hi = 30 * time.Minute
		u := m.HttpRequest.GetUrl()
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return status.Errorf(codes.InvalidArgument, "url %q must begin with http:// or https://", u)
		}
	default:
		return status.Error(codes.InvalidArgument, "task needs an app_engine_http_request or an http_request")
	}
	if dd := task.GetDispatchDeadline(); dd != nil {
		if d := dd.AsDuration(); d < lo || d > hi {
			return status.Errorf(codes.InvalidArgument, "dispatch_deadline %v is outside [%v, %v]", d, lo, hi)
		}
	}
	return nil
}
