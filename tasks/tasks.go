// Package tasks hands a started export operation to a poller through a Cloud
// Tasks queue, so that the polling runs in a request of its own (an App Engine
// basic-scaling instance or a Cloud Run request) instead of after a response.
package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dsexport/dsexport/poller"
)

// Target is where the queue delivers a poll task.
type Target string

const (
	// AppEngine delivers to a service of the queue's own App Engine app,
	// authenticated by App Engine itself (X-AppEngine-QueueName).
	AppEngine Target = "appengine"
	// HTTP delivers to an HTTPS URL, such as a Cloud Run service, with an
	// OIDC token minted for a service account.
	HTTP Target = "http"
)

// PollPath is the route the poll task is sent to; server.Server serves it.
const PollPath = "/tasks/poll"

// The dispatch deadline limits Cloud Tasks enforces: a request to a worker may
// last from 15 seconds up to 24 hours on App Engine (basic and manual scaling)
// and up to 30 minutes for HTTP targets. The defaults are the maxima, because
// a poll request works for as long as its budget allows.
const (
	MinDispatchDeadline          = 15 * time.Second
	MaxAppEngineDispatchDeadline = 24 * time.Hour
	MaxHTTPDispatchDeadline      = 30 * time.Minute
)

// Config says which queue the poll tasks go to and where the queue delivers them.
type Config struct {
	// Queue is the full queue name, projects/P/locations/L/queues/Q
	// (DSEXPORT_TASKS_QUEUE).
	Queue string
	// Target is AppEngine or HTTP.
	Target Target

	// Service and Version route App Engine tasks back to this service and
	// version (GAE_SERVICE, GAE_VERSION): without them a task goes to the
	// app's default service, which may not be dsexport. Service is required;
	// an empty Version means the version that serves the service's traffic.
	Service string
	Version string

	// URL is the base URL of the service HTTP tasks are sent to
	// (DSEXPORT_TASKS_URL), e.g. the Cloud Run service URL; the task goes to
	// URL + "/tasks/poll".
	URL string
	// ServiceAccount is the email of the service account Cloud Tasks mints
	// the task's OIDC token for (DSEXPORT_TASKS_SERVICE_ACCOUNT). Required for
	// HTTP targets: Cloud Run refuses anonymous requests.
	ServiceAccount string
	// Audience is the OIDC token's audience; empty means URL (without a
	// trailing slash), which is what Cloud Run accepts for the service.
	Audience string

	// DispatchDeadline is how long Cloud Tasks waits for the poll request
	// before it counts the attempt as failed and retries. Zero means the
	// maximum for the target (24h on App Engine, 30m for HTTP).
	DispatchDeadline time.Duration

	// Endpoint, when set, is a host:port the client dials without TLS and
	// without credentials (DSEXPORT_TASKS_ENDPOINT): a test server.
	Endpoint string
}

// queueRE matches exactly projects/{project}/locations/{location}/queues/{queue}
// with the characters Cloud Tasks allows in each part (project IDs may be
// domain-scoped, "example.com:p"; queue IDs are at most 100 characters).
var queueRE = regexp.MustCompile(`^projects/[A-Za-z0-9.:-]+/locations/[A-Za-z0-9-]+/queues/[A-Za-z0-9-]{1,100}$`)

// Check reports what New would refuse in cfg, so that a caller can tell a
// mistake in its configuration before it connects.
func (cfg Config) Check() error {
	_, err := cfg.validate()
	return err
}

// validate checks cfg and returns it with its defaults filled in.
func (cfg Config) validate() (Config, error) {
	if !queueRE.MatchString(cfg.Queue) {
		return cfg, fmt.Errorf("DSEXPORT_TASKS_QUEUE %q is not projects/{project}/locations/{location}/queues/{queue}", cfg.Queue)
	}
	var maxDeadline time.Duration
	switch cfg.Target {
	case AppEngine:
		maxDeadline = MaxAppEngineDispatchDeadline
		if cfg.Service == "" {
			return cfg, errors.New("App Engine task target needs the service to route to (GAE_SERVICE)")
		}
	case HTTP:
		maxDeadline = MaxHTTPDispatchDeadline
		u, err := url.Parse(cfg.URL)
		switch {
		case cfg.URL == "":
			return cfg, errors.New("HTTP task target needs DSEXPORT_TASKS_URL, the base URL of this service")
		case err != nil:
			return cfg, fmt.Errorf("DSEXPORT_TASKS_URL: %v", err)
		case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
			return cfg, fmt.Errorf("DSEXPORT_TASKS_URL %q is not an absolute https:// or http:// URL", cfg.URL)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return cfg, fmt.Errorf("DSEXPORT_TASKS_URL %q must be a base URL without user, query or fragment", cfg.URL)
		}
		// The poll path is appended to the base, so a trailing slash would
		// make it "//tasks/poll".
		cfg.URL = strings.TrimRight(cfg.URL, "/")
		if cfg.ServiceAccount == "" {
			return cfg, errors.New("HTTP task target needs DSEXPORT_TASKS_SERVICE_ACCOUNT, the service account the OIDC token is minted for")
		}
		if !strings.Contains(cfg.ServiceAccount, "@") {
			return cfg, fmt.Errorf("DSEXPORT_TASKS_SERVICE_ACCOUNT %q is not a service account email", cfg.ServiceAccount)
		}
		if cfg.Audience == "" {
			cfg.Audience = cfg.URL
		}
	default:
		return cfg, fmt.Errorf("task target %q is neither %q nor %q", cfg.Target, AppEngine, HTTP)
	}
	if cfg.DispatchDeadline == 0 {
		cfg.DispatchDeadline = maxDeadline
	}
	if cfg.DispatchDeadline < MinDispatchDeadline || cfg.DispatchDeadline > maxDeadline {
		return cfg, fmt.Errorf("dispatch deadline %v is outside Cloud Tasks' limits for %s targets, %v to %v", cfg.DispatchDeadline, cfg.Target, MinDispatchDeadline, maxDeadline)
	}
	return cfg, nil
}

// Dispatcher enqueues poll tasks on a Cloud Tasks queue.
type Dispatcher struct {
	cfg    Config
	client *cloudtasks.Client
}

// New validates cfg and connects to Cloud Tasks. opts are passed to the
// client after the ones Endpoint implies, so a caller's options win.
func New(ctx context.Context, cfg Config, opts ...option.ClientOption) (*Dispatcher, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("cloud tasks dispatch: %w", err)
	}
	client, err := NewClient(ctx, cfg.Endpoint, opts...)
	if err != nil {
		return nil, err
	}
	return &Dispatcher{cfg: cfg, client: client}, nil
}

// NewClient connects to Cloud Tasks, or, with endpoint
// (DSEXPORT_TASKS_ENDPOINT), to that host:port without TLS nor credentials.
// opts come after the ones endpoint implies, so a caller's options win.
func NewClient(ctx context.Context, endpoint string, opts ...option.ClientOption) (*cloudtasks.Client, error) {
	var all []option.ClientOption
	if endpoint != "" {
		all = append(all,
			option.WithEndpoint(endpoint),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		)
	}
	client, err := cloudtasks.NewClient(ctx, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("cloud tasks client: %w", err)
	}
	return client, nil
}

// Close closes the connection to Cloud Tasks.
func (d *Dispatcher) Close() error { return d.client.Close() }

// createAttempts bounds how often one Dispatch tries CreateTask. The client
// library does not retry CreateTask by default because an unnamed task would
// be created twice; our tasks are named, so a retry after a lost answer meets
// AlreadyExists, which Dispatch takes as success.
const createAttempts = 3

// Dispatch enqueues one task that makes the queue POST {"name": h.Name} to
// /tasks/poll. The hand-off's poll count and round tell it from the
// operation's others: 0 polls for the task the export trigger enqueues, N
// for the continuation a poll request enqueues after the operation's Nth
// poll, and a round when the sweep revives an operation.
//
// The task is named after the hand-off (TaskID), so a second Dispatch of the same pair
// is deduplicated by Cloud Tasks and creates nothing. Cloud Tasks keeps a
// name taken for about an hour after its task ran (about 9 days for queues
// created by queue.yaml), so a continuation must carry a poll count its
// predecessors did not: a poll request that made no poll must fail, letting
// Cloud Tasks retry it, rather than enqueue a twin of itself.
func (d *Dispatcher) Dispatch(ctx context.Context, h poller.Handoff) error {
	name := h.Name
	if _, err := poller.ParseName(name); err != nil {
		return fmt.Errorf("enqueue poll: %w", err)
	}
	if h.Polls < 0 || h.Round < 0 {
		return fmt.Errorf("enqueue poll of %s: hand-off after %d polls in round %d: neither may be negative", name, h.Polls, h.Round)
	}
	body, err := json.Marshal(struct {
		Name string `json:"name"`
	}{name})
	if err != nil {
		return fmt.Errorf("enqueue poll of %s: %w", name, err)
	}
	headers := map[string]string{"Content-Type": "application/json"}
	task := &cloudtaskspb.Task{
		Name:             d.cfg.Queue + "/tasks/" + TaskID(h),
		DispatchDeadline: durationpb.New(d.cfg.DispatchDeadline),
	}
	switch d.cfg.Target {
	case AppEngine:
		task.MessageType = &cloudtaskspb.Task_AppEngineHttpRequest{AppEngineHttpRequest: &cloudtaskspb.AppEngineHttpRequest{
			HttpMethod:       cloudtaskspb.HttpMethod_POST,
			AppEngineRouting: &cloudtaskspb.AppEngineRouting{Service: d.cfg.Service, Version: d.cfg.Version},
			RelativeUri:      PollPath,
			Headers:          headers,
			Body:             body,
		}}
	case HTTP:
		task.MessageType = &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
			HttpMethod: cloudtaskspb.HttpMethod_POST,
			Url:        d.cfg.URL + PollPath,
			Headers:    headers,
			Body:       body,
			AuthorizationHeader: &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{
				ServiceAccountEmail: d.cfg.ServiceAccount,
				Audience:            d.cfg.Audience,
			}},
		}}
	}
	retry := gax.WithRetry(func() gax.Retryer {
		return &boundedRetryer{
			Retryer: gax.OnCodes([]codes.Code{codes.Unavailable, codes.DeadlineExceeded}, gax.Backoff{
				Initial:    100 * time.Millisecond,
				Max:        time.Second,
				Multiplier: 2,
			}),
			left: createAttempts - 1,
		}
	})
	_, err = d.client.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: d.cfg.Queue, Task: task}, retry)
	// AlreadyExists means this (operation, poll count) was enqueued before,
	// by an earlier attempt of this call or by a repeated hand-off: Cloud
	// Tasks deduplicated it, and the poll it stands for is queued or done.
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("enqueue poll of %s: %w", name, err)
	}
	return nil
}

// TaskID is the ID of the task for hand-off h: the first 32 hex digits of
// the operation name's SHA-256, "-", and "p" with the poll count, followed
// by "-r" and the round for the sweep's resumes (round 0 included). The ID must be a
// pure function of its arguments, across processes and releases, for Cloud
// Tasks to deduplicate a repeated hand-off. It starts with a hash rather than
// the operation ID because Cloud Tasks warns that sequential IDs or prefixes
// (operation IDs share long prefixes) raise latency and error rates, and
// because operation names contain "/", which a task ID may not.
func TaskID(h poller.Handoff) string {
	sum := sha256.Sum256([]byte(h.Name))
	id := hex.EncodeToString(sum[:16]) + "-p" + strconv.Itoa(h.Polls)
	if h.Resume {
		id += "-r" + strconv.FormatInt(h.Round, 10)
	}
	return id
}

// boundedRetryer stops the retryer it wraps after a number of retries: gax's
// own retryers go on until the context ends.
type boundedRetryer struct {
	gax.Retryer
	left int
}

func (r *boundedRetryer) Retry(err error) (time.Duration, bool) {
	if r.left <= 0 {
		return 0, false
	}
	r.left--
	return r.Retryer.Retry(err)
}
