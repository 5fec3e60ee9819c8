// Package admin holds the adapters of the Datastore Admin API
// (google.golang.org/api/datastore/v1, the (default) database) and the
// Firestore Admin API (google.golang.org/api/firestore/v1, named databases
// and managed backups): they start exports and read their long-running
// operations, parse Google's wire format into poller snapshots, retry what
// is safe to retry, and map failures to the domain's errors with
// google.rpc codes. Router sends each call to the API that serves it.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	dsadmin "google.golang.org/api/datastore/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/api/option/internaloption"
	htransport "google.golang.org/api/transport/http"

	"github.com/dsexport/dsexport/internal/retry"
	"github.com/dsexport/dsexport/poller"
)

// Datastore is the Datastore Admin API client: projects.export,
// projects.import (drill.go) and projects.operations.get of
// google.golang.org/api/datastore/v1.
type Datastore struct {
	svc   *dsadmin.Service
	retry retry.Policy
	// emulator is set when the client was built with an endpoint (a fake
	// or the Datastore emulator): a local output directory in an answer is
	// then resolved to the export's file (resolveEmulatorOutput).
	emulator bool
}

// settings are what Options set; the Datastore and the Firestore clients
// share them.
type settings struct {
	retry retry.Policy
}

// Option configures a Datastore or a Firestore client.
type Option func(*settings)

// WithRetry replaces the retry policy of the client's calls (see
// DefaultRetry); retry.Policy{Attempts: 1} turns retries off.
func WithRetry(p retry.Policy) Option {
	return func(s *settings) { s.retry = p }
}

// newSettings are the defaults with opts applied.
func newSettings(opts []Option) settings {
	s := settings{retry: DefaultRetry()}
	for _, opt := range opts {
		opt(&s)
	}
	return s
}

// DefaultRetry is the policy of a new client: three tries with backoffs of
// 100ms and 200ms, well inside a poll step's few seconds, so a brief 429 or
// 5xx costs a little latency instead of a whole poll interval.
func DefaultRetry() retry.Policy {
	return retry.Policy{Attempts: 3, Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
}

// NewDatastore builds the Admin API client. With an empty endpoint it talks to
// Google with Application Default Credentials; with an endpoint (a fake, or the
// Datastore emulator) it sends requests there without authentication.
//
// Get and Export retry transient failures within the deadline of the context
// they are given (see their comments); aopts can change the policy. Every
// answer is read through a bound (MaxAnswer), and the API's part of their
// errors' text is at most poller.MaxErrorText bytes.
func NewDatastore(ctx context.Context, endpoint string, hc *http.Client, aopts ...Option) (*Datastore, error) {
	opts, err := clientOptions(ctx, endpoint, hc, dsadmin.CloudPlatformScope, dsadmin.DatastoreScope)
	if err != nil {
		return nil, fmt.Errorf("datastore admin client: %w", err)
	}
	svc, err := dsadmin.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("datastore admin client: %w", err)
	}
	return &Datastore{svc: svc, retry: newSettings(aopts).retry, emulator: endpoint != ""}, nil
}

// clientOptions are the options of a generated Admin API service. With an
// endpoint, requests go there without authentication through hc (nil: a
// client of its own); without one, to Google with Application Default
// Credentials and scopes, hc unused. Either way every answer is read
// through the bound (boundClient).
func clientOptions(ctx context.Context, endpoint string, hc *http.Client, scopes ...string) ([]option.ClientOption, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		if !strings.HasSuffix(endpoint, "/") {
			endpoint += "/"
		}
		opts = append(opts, option.WithEndpoint(endpoint), option.WithoutAuthentication())
	} else {
		hc = nil // Google is reached only with credentials.
	}
	if hc == nil {
		// Built here, with NewService's scopes and auth library, so that
		// every answer is read through the bound.
		var err error
		hc, _, err = htransport.NewClient(ctx, append(opts, option.WithScopes(scopes...),
			internaloption.EnableNewAuthLibrary())...)
		if err != nil {
			return nil, err
		}
	}
	return append(opts, option.WithHTTPClient(boundClient(hc))), nil
}

// Export starts a managed export. The trigger goes into the operation's labels
// so the console and gcloud show who started it.
//
// Export is not idempotent: a retried POST that the API had already acted on
// would start a second export (two exports of the same data, two reports).
// So Export retries only when the API certainly did not act: a 429 (the
// export quota refuses the call before it starts anything) and a connection
// that could not be opened (nothing was sent). A 5xx, a timeout or a
// connection lost after sending may have started the export, so they are
// returned at once; the caller sees a failed start it can report, and an
// operator can check for an orphan with gcloud datastore operations list.
//
// The Datastore Admin API exports only the (default) database: its request
// has no database. A request for a named one is refused without a call
// (INVALID_ARGUMENT), as exporting (default) instead would back up the
// wrong data; named databases go through Firestore (see Router).
//
// Against the emulator (a client built with an endpoint), whose answer's
// outputUrl is the local directory it wrote under, OutputURL is the
// export's local .overall_export_metadata file when it can be told
// (EmulatorExportFile), so that it can be imported as Google's is.
func (a *Datastore) Export(ctx context.Context, req poller.ExportRequest) (poller.Operation, error) {
	if !poller.IsDefaultDatabase(req.Database) {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument,
			Err: fmt.Errorf("start export of %s: the Datastore Admin API exports only the (default) database; database %q goes through the Firestore Admin API",
				req.Project, poller.BoundText(req.Database, poller.MaxLabel))}
	}
	body := &dsadmin.GoogleDatastoreAdminV1ExportEntitiesRequest{
		OutputUrlPrefix: req.OutputURLPrefix,
		Labels:          map[string]string{"trigger": string(req.Trigger)},
		EntityFilter:    entityFilter(req.Kinds, req.Namespaces),
	}
	var lro *dsadmin.GoogleLongrunningOperation
	err := retry.Do(ctx, a.retry, func(ctx context.Context) error {
		return bounded(ctx, func(ctx context.Context) (err error) {
			lro, err = a.svc.Projects.Export(req.Project, body).Context(ctx).Do()
			return err
		})
	}, classifyExport)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: RPCCode(err),
			Err: fmt.Errorf("start export of %s to %s: %w", req.Project, req.OutputURLPrefix, err)}
	}
	op, err := ParseOperation(lro)
	if err != nil {
		return poller.Operation{}, fmt.Errorf("start export of %s: %w", req.Project, err)
	}
	if op.Project == "" {
		op.Project = req.Project
	}
	if op.Trigger == "" {
		op.Trigger = req.Trigger
	}
	return a.local(op), nil
}

// local is op with the emulator's local output directory resolved to the
// export's .overall_export_metadata file (see emulator.go), when a talks
// to an endpoint of its own; against Google, op as it is.
func (a *Datastore) local(op poller.Operation) poller.Operation {
	if !a.emulator {
		return op
	}
	return resolveEmulatorOutput(op)
}

// Get reads the operation name, which must be projects/{project}/operations/{id}.
// Reading is idempotent, so Get retries every transient failure (IsTransient),
// waiting at least as long as a Retry-After header asks. An emulator's
// local output directory is resolved as Export resolves it.
func (a *Datastore) Get(ctx context.Context, name string) (poller.Operation, error) {
	if _, err := poller.ParseName(name); err != nil {
		return poller.Operation{}, err
	}
	var lro *dsadmin.GoogleLongrunningOperation
	err := retry.Do(ctx, a.retry, func(ctx context.Context) error {
		return bounded(ctx, func(ctx context.Context) (err error) {
			lro, err = a.svc.Projects.Operations.Get(name).Context(ctx).Do()
			return err
		})
	}, classifyGet)
	if err != nil {
		return poller.Operation{}, domainError(fmt.Errorf("get %s: %w", name, err))
	}
	op, err := ParseOperation(lro)
	if err != nil {
		return poller.Operation{}, fmt.Errorf("get %s: %w", name, err)
	}
	if op.Name == "" {
		op.Name = name
	}
	return a.local(op), nil
}

// ParseOperationJSON parses an operation as the REST API returns it.
func ParseOperationJSON(data []byte) (poller.Operation, error) {
	var lro dsadmin.GoogleLongrunningOperation
	if err := json.Unmarshal(data, &lro); err != nil {
		return poller.Operation{}, fmt.Errorf("parse operation: %w", err)
	}
	return ParseOperation(&lro)
}

// ParseOperation turns the API's long-running operation into a snapshot. An
// absent done means false; progress counters are int64s sent as strings.
// Its strings and lists are bounded (poller.Operation.Bounded): an error
// message, an output URL, a label or a filter of any size is cut, saying so.
func ParseOperation(lro *dsadmin.GoogleLongrunningOperation) (poller.Operation, error) {
	op := poller.Operation{Name: lro.Name, Done: lro.Done}
	if lro.Name != "" {
		project, err := poller.ParseName(lro.Name)
		if err != nil {
			return poller.Operation{}, err
		}
		op.Project = project
	}
	if len(lro.Metadata) > 0 {
		var md dsadmin.GoogleDatastoreAdminV1ExportEntitiesMetadata
		if err := json.Unmarshal(lro.Metadata, &md); err != nil {
			return poller.Operation{}, fmt.Errorf("parse operation metadata: %w", err)
		}
		op.OutputURLPrefix = md.OutputUrlPrefix
		if f := md.EntityFilter; f != nil {
			op.Kinds, op.Namespaces = f.Kinds, f.NamespaceIds
		}
		if p := md.ProgressEntities; p != nil {
			op.EntitiesCompleted, op.EntitiesEstimated = p.WorkCompleted, p.WorkEstimated
		}
		if p := md.ProgressBytes; p != nil {
			op.BytesCompleted, op.BytesEstimated = p.WorkCompleted, p.WorkEstimated
		}
		if c := md.Common; c != nil {
			op.State = poller.State(c.State)
			op.Trigger = poller.Trigger(c.Labels["trigger"])
			var err error
			if op.StartTime, err = parseTime("startTime", c.StartTime); err != nil {
				return poller.Operation{}, err
			}
			if op.EndTime, err = parseTime("endTime", c.EndTime); err != nil {
				return poller.Operation{}, err
			}
		}
	}
	if len(lro.Response) > 0 {
		var resp dsadmin.GoogleDatastoreAdminV1ExportEntitiesResponse
		if err := json.Unmarshal(lro.Response, &resp); err != nil {
			return poller.Operation{}, fmt.Errorf("parse operation response: %w", err)
		}
		op.OutputURL = resp.OutputUrl
	}
	if e := lro.Error; e != nil {
		op.ErrorCode, op.ErrorMessage = int(e.Code), e.Message
		if op.ErrorCode == 0 && op.ErrorMessage == "" {
			// An error object with neither field is still an error.
			op.ErrorMessage = "operation ended with an empty error"
		}
	}
	return op.Bounded(), nil
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse operation %s: %w", field, err)
	}
	return t.UTC(), nil
}

// IsTransient tells whether a failed Admin API call may succeed if tried again:
// 429, 5xx, timeouts and network errors. 4xx answers such as 403 or 404 are final.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return gerr.Code == http.StatusTooManyRequests || gerr.Code >= 500
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true
	}
	var uerr *url.Error
	return errors.As(err, &uerr)
}

// classifyGet retries what IsTransient calls transient.
func classifyGet(err error) (bool, time.Duration) {
	return IsTransient(err), retryAfter(err)
}

// classifyExport retries only failures the API certainly did not act on; see
// Export for why.
func classifyExport(err error) (bool, time.Duration) {
	if StatusCode(err) == http.StatusTooManyRequests {
		return true, retryAfter(err)
	}
	return notSent(err), 0
}

// notSent tells whether err is a failure to open the connection (refused,
// unreachable, DNS), so the request never left the process.
func notSent(err error) bool {
	var oerr *net.OpError
	return errors.As(err, &oerr) && oerr.Op == "dial"
}

// retryAfter is the wait a failed call's Retry-After header asks for (in
// seconds or as an HTTP date), or 0. Google sends it with some 429 and 503
// answers; googleapi.Error keeps the response's headers.
func retryAfter(err error) time.Duration {
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		return 0
	}
	v := gerr.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// StatusCode is the HTTP status of a failed Admin API call, or 0.
func StatusCode(err error) int {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return gerr.Code
	}
	return 0
}

// domainError marks err with the domain's error it stands for, keeping the
// API's error for errors.As and the message.
func domainError(err error) error {
	switch {
	case StatusCode(err) == http.StatusNotFound:
		return &markedError{err: err, mark: poller.ErrOperationGone}
	case IsTransient(err):
		return &markedError{err: err, mark: poller.ErrTransient}
	}
	return err
}

type markedError struct{ err, mark error }

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.err, e.mark} }

// RPCCode is the google.rpc code of a failed call: the status the API's
// error body names ("PERMISSION_DENIED"), else the code its HTTP status
// stands for, else UNAVAILABLE (14) for a network failure and
// DEADLINE_EXCEEDED (4) for a timeout.
func RPCCode(err error) int {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		var body struct {
			Error struct {
				Status string `json:"status"`
			} `json:"error"`
		}
		if json.Unmarshal([]byte(gerr.Body), &body) == nil {
			if c, ok := rpcCodes[body.Error.Status]; ok {
				return c
			}
		}
		if c, ok := httpCodes[gerr.Code]; ok {
			return c
		}
		return 2 // UNKNOWN
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return 4
	case errors.Is(err, context.Canceled):
		return 1
	case IsTransient(err):
		return 14
	}
	return 2
}

// The google.rpc codes the adapters give themselves.
const (
	codeInvalidArgument    = 3
	codeFailedPrecondition = 9
)

// rpcCodes are the google.rpc.Code values by name.
var rpcCodes = map[string]int{
	"CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
	"ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
	"DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// httpCodes is the google.rpc code each HTTP status stands for, as Google's
// API design guide maps them.
var httpCodes = map[int]int{
	400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 412: 9, 416: 11, 429: 8, 499: 1,
	500: 13, 501: 12, 503: 14, 504: 4,
}

// entityFilter is an export's or an import's filter: nil for all kinds
// and namespaces.
func entityFilter(kinds, namespaces []string) *dsadmin.GoogleDatastoreAdminV1EntityFilter {
	if len(kinds) == 0 && len(namespaces) == 0 {
		return nil
	}
	return &dsadmin.GoogleDatastoreAdminV1EntityFilter{Kinds: kinds, NamespaceIds: namespaces}
}
