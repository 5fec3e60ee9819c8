// Package count counts the entities of a kind in a Datastore-mode database,
// for the content check after each export (poller.Counter), and clears a
// kind in a restore drill's scratch database.
//
// A count is a COUNT aggregation, which Datastore bills as one entity read
// per 1,000 entities counted (at least one read per query): a kind of 10
// million entities costs 10,000 reads each time it is checked. Clear reads
// the kind's keys (a keys-only query, billed by the index entries it reads)
// and deletes each entity, one delete per entity. The keys-only fallback of
// Count (see Counter) reads every key too, but it runs only where COUNT is
// unimplemented, on the Cloud Datastore emulator.
package count

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/datastore"
	"cloud.google.com/go/datastore/apiv1/datastorepb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dsexport/dsexport/poller"
)

// MaxFallback bounds the keys a fallback count reads (WithMaxFallback
// changes it): beyond it, Count fails rather than read keys for ever. Only
// an emulator falls back, and no emulator holds that many.
const MaxFallback = 10_000_000

// ClearBatch is the most keys Clear deletes in one commit: Datastore takes
// at most 500 mutations per commit.
const ClearBatch = 500

// maxQuoted bounds a name quoted in an error message: a kind may have 1,500
// bytes, a message has room for less.
const maxQuoted = 256

// countAlias names the COUNT in the aggregation's answer.
const countAlias = "count"

// Counter counts and clears entities. It implements poller.Counter. It holds
// one Datastore client per project and database, made on first use and
// closed by Close; it is safe for concurrent use.
//
// The Cloud Datastore emulator does not implement RunAggregationQuery (it
// answers gRPC Unimplemented, HTTP 501), and tests and local runs count on
// it. So a client whose COUNT was refused as unimplemented counts by reading
// the kind's keys instead (bounded by MaxFallback), and remembers it: later
// counts go straight to the keys. The Firestore emulator and Datastore
// itself answer COUNT.
type Counter struct {
	// opts are the client options of every client: the emulator's, or none
	// for Application Default Credentials.
	opts        []option.ClientOption
	maxFallback int64

	mu      sync.Mutex
	clients map[clientKey]*client
	closed  bool
}

type clientKey struct{ project, database string }

// client is one database's Datastore client and what was learnt of it.
type client struct {
	ds *datastore.Client
	// noCount is set once the database answered COUNT as unimplemented.
	noCount atomic.Bool
}

// Option configures New.
type Option func(*Counter)

// WithEmulatorHost makes the Counter reach the emulator at host (host:port)
// over plain gRPC without credentials, whatever DATASTORE_EMULATOR_HOST says:
// a drill may count on another emulator than the store's.
func WithEmulatorHost(host string) Option {
	return func(c *Counter) { c.opts = emulatorOptions(host) }
}

// WithMaxFallback bounds a fallback count at n keys instead of MaxFallback.
func WithMaxFallback(n int64) Option {
	return func(c *Counter) { c.maxFallback = n }
}

// emulatorOptions reach the emulator at host without credentials. They come
// after the options NewClientWithDatabase derives from
// DATASTORE_EMULATOR_HOST, so the endpoint overrides the variable's. The
// passthrough scheme keeps gRPC from resolving host as a DNS name, as the
// client does for the variable; without the variable the client's own
// options ask for credentials and TLS, which WithoutAuthentication and the
// insecure transport credentials (the last given wins) replace.
func emulatorOptions(host string) []option.ClientOption {
	if !strings.Contains(host, "://") {
		host = "passthrough:///" + host
	}
	return []option.ClientOption{
		option.WithEndpoint(host),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// New returns a Counter that reaches Datastore with Application Default
// Credentials (or the emulator DATASTORE_EMULATOR_HOST names, as the client
// does), or the emulator WithEmulatorHost names. It connects to nothing yet:
// each database's client is made on its first use.
func New(ctx context.Context, opts ...Option) (*Counter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &Counter{maxFallback: MaxFallback, clients: map[clientKey]*client{}}
	for _, o := range opts {
		o(c)
	}
	if c.maxFallback <= 0 {
		return nil, fmt.Errorf("count: fallback bound %d; want more than 0", c.maxFallback)
	}
	return c, nil
}

// Close closes every client. Count and Clear fail after it.
func (c *Counter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for k, cl := range c.clients {
		if err := cl.ds.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close client of %s: %w", poller.Scope(k.project, k.database), err))
		}
		delete(c.clients, k)
	}
	return errors.Join(errs...)
}

// client returns the client of database ("" or "(default)": the default
// one) of project, made now if there is none yet.
func (c *Counter) client(ctx context.Context, project, database string) (*client, error) {
	if poller.IsDefaultDatabase(database) {
		database = ""
	}
	key := clientKey{project, database}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("counter closed")
	}
	if cl, ok := c.clients[key]; ok {
		return cl, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The client outlives this call: its credentials must not end with the
	// caller's deadline. Dialing does not block; finding Application Default
	// Credentials may read a file or ask the metadata server, once per
	// database, and other databases' first calls wait for it meanwhile.
	ds, err := datastore.NewClientWithDatabase(context.WithoutCancel(ctx), project, database, c.opts...)
	if err != nil {
		return nil, fmt.Errorf("datastore client: %w", err)
	}
	cl := &client{ds: ds}
	c.clients[key] = cl
	return cl, nil
}

// Count returns the number of entities of kind in namespace ("" the
// default) of database of project. It implements poller.Counter.
func (c *Counter) Count(ctx context.Context, project, database, namespace, kind string) (int64, error) {
	n, err := c.count(ctx, project, database, namespace, kind)
	if err != nil {
		return 0, wrap("count", project, database, namespace, kind, err)
	}
	return n, nil
}

func (c *Counter) count(ctx context.Context, project, database, namespace, kind string) (int64, error) {
	if err := checkKind(kind); err != nil {
		return 0, err
	}
	cl, err := c.client(ctx, project, database)
	if err != nil {
		return 0, err
	}
	q := datastore.NewQuery(kind).Namespace(namespace)
	if !cl.noCount.Load() {
		n, err := aggregateCount(ctx, cl.ds, q)
		if status.Code(err) != codes.Unimplemented {
			return n, err
		}
		cl.noCount.Store(true)
	}
	return c.countKeys(ctx, cl.ds, q)
}

// aggregateCount runs q as a COUNT aggregation.
func aggregateCount(ctx context.Context, ds *datastore.Client, q *datastore.Query) (int64, error) {
	res, err := ds.RunAggregationQuery(ctx, q.NewAggregationQuery().WithCount(countAlias))
	if err != nil {
		return 0, err
	}
	v, ok := res[countAlias].(*datastorepb.Value)
	if !ok {
		return 0, fmt.Errorf("COUNT answered no %q integer (%d results)", countAlias, len(res))
	}
	iv, ok := v.GetValueType().(*datastorepb.Value_IntegerValue)
	if !ok || iv.IntegerValue < 0 {
		return 0, fmt.Errorf("COUNT answered %s, not a count", poller.BoundText(v.String(), maxQuoted))
	}
	return iv.IntegerValue, nil
}

// countKeys counts q's keys, at most c.maxFallback of them.
func (c *Counter) countKeys(ctx context.Context, ds *datastore.Client, q *datastore.Query) (int64, error) {
	it := ds.Run(ctx, q.KeysOnly())
	var n int64
	for {
		_, err := it.Next(nil)
		if errors.Is(err, iterator.Done) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("keys-only count (COUNT unimplemented here), after %d keys: %w", n, err)
		}
		n++
		if n > c.maxFallback {
			return 0, fmt.Errorf("more than %d entities, the most a keys-only count reads where COUNT is unimplemented", c.maxFallback)
		}
	}
}

// Clear deletes every entity of kind in namespace ("" the default) of
// database of project, ClearBatch keys at a time, and returns how many it
// deleted. It is for a restore drill's scratch database: nothing else ever
// should lose a kind. Clearing a kind already empty deletes nothing. On an
// error (ctx's end among them) it returns what it deleted before.
func (c *Counter) Clear(ctx context.Context, project, database, namespace, kind string) (int64, error) {
	n, err := c.clear(ctx, project, database, namespace, kind)
	if err != nil {
		return n, wrap("clear", project, database, namespace, kind, fmt.Errorf("after %d deleted: %w", n, err))
	}
	return n, nil
}

func (c *Counter) clear(ctx context.Context, project, database, namespace, kind string) (int64, error) {
	if err := checkKind(kind); err != nil {
		return 0, err
	}
	cl, err := c.client(ctx, project, database)
	if err != nil {
		return 0, err
	}
	q := datastore.NewQuery(kind).Namespace(namespace).KeysOnly().Limit(ClearBatch)
	var deleted int64
	// Each batch's query starts where the last one ended, so that a key
	// deleted but still seen by a query that lags is neither deleted nor
	// counted twice.
	var start *datastore.Cursor
	for {
		bq := q
		if start != nil {
			bq = q.Start(*start)
		}
		it := cl.ds.Run(ctx, bq)
		keys := make([]*datastore.Key, 0, ClearBatch)
		for {
			k, err := it.Next(nil)
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return deleted, fmt.Errorf("list keys: %w", err)
			}
			keys = append(keys, k)
		}
		if len(keys) == 0 {
			return deleted, nil
		}
		cur, err := it.Cursor()
		if err != nil {
			return deleted, fmt.Errorf("list keys: %w", err)
		}
		if err := cl.ds.DeleteMulti(ctx, keys); err != nil {
			return deleted, fmt.Errorf("delete %d keys: %w", len(keys), err)
		}
		deleted += int64(len(keys))
		start = &cur
	}
}

// checkKind refuses what is not one user kind: the empty kind would make a
// kindless query, which counts (and clears) every kind, and kinds that start
// with __ are Datastore's own (__kind__, __namespace__, __Stat_Kind__).
func checkKind(kind string) error {
	if kind == "" {
		return errors.New("no kind given (a kindless query would take every kind)")
	}
	if strings.HasPrefix(kind, "__") {
		return errors.New("kinds starting with __ are reserved by Datastore, not entities of the database")
	}
	return nil
}

// opError is a failed Count or Clear: what was asked, of which kind,
// namespace, database and project, and why. Its text is bounded
// (poller.MaxErrorText), as the cause comes from the API; Unwrap gives the
// cause whole (a gRPC status, the context's error).
type opError struct {
	Op                                 string // "count" or "clear"
	Project, Database, Namespace, Kind string
	Err                                error
}

func (e *opError) Error() string {
	ns := ""
	if e.Namespace != "" {
		ns = " in namespace " + quote(e.Namespace)
	}
	return poller.BoundText(fmt.Sprintf("%s kind %s%s of %s: %v", e.Op, quote(e.Kind), ns,
		poller.BoundText(poller.Scope(e.Project, e.Database), 2*maxQuoted), e.Err), poller.MaxErrorText)
}

// Unwrap gives the cause, and poller.ErrTransient when it may pass if
// tried again (a drill tries such a step again at its next advance).
func (e *opError) Unwrap() []error {
	if transient(e.Err) {
		return []error{e.Err, poller.ErrTransient}
	}
	return []error{e.Err}
}

// transient tells whether a failed call may succeed if tried again: the
// gRPC codes Google documents as retryable, and a deadline.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal:
		return true
	}
	return false
}

func wrap(op, project, database, namespace, kind string, err error) error {
	return &opError{Op: op, Project: project, Database: database, Namespace: namespace, Kind: kind, Err: err}
}

func quote(s string) string { return strconv.Quote(poller.BoundText(s, maxQuoted)) }

var _ poller.Counter = (*Counter)(nil)

// MaxKinds bounds the (namespace, kind) pairs Kinds lists: a drill's
// scratch database holds what one export held, and more is an error, not
// a partial list.
const MaxKinds = 10_000

// Kinds lists the kinds of entities in database of project, in every
// namespace, from Datastore's metadata queries (__namespace__, then
// __kind__ in each): a drill checks that an existing scratch database is
// empty before it imports into it, and empties what the import wrote
// after. Datastore's own kinds (__…__) are left out.
func (c *Counter) Kinds(ctx context.Context, project, database string) ([]poller.KindCount, error) {
	kinds, err := c.kinds(ctx, project, database)
	if err != nil {
		return nil, wrap("list kinds", project, database, "", "*", err)
	}
	return kinds, nil
}

func (c *Counter) kinds(ctx context.Context, project, database string) ([]poller.KindCount, error) {
	cl, err := c.client(ctx, project, database)
	if err != nil {
		return nil, err
	}
	namespaces, err := cl.ds.GetAll(ctx, datastore.NewQuery("__namespace__").KeysOnly(), nil)
	if err != nil {
		return nil, fmt.Errorf("namespaces: %w", err)
	}
	var out []poller.KindCount
	for _, nk := range namespaces {
		// The default namespace's key has an id, not a name.
		ns := nk.Name
		keys, err := cl.ds.GetAll(ctx, datastore.NewQuery("__kind__").Namespace(ns).KeysOnly(), nil)
		if err != nil {
			return nil, fmt.Errorf("kinds in namespace %s: %w", quote(ns), err)
		}
		for _, k := range keys {
			if strings.HasPrefix(k.Name, "__") {
				continue
			}
			if len(out) == MaxKinds {
				return nil, fmt.Errorf("more than %d kinds", MaxKinds)
			}
			out = append(out, poller.KindCount{Namespace: poller.BoundText(ns, poller.MaxNamespace), Kind: poller.BoundText(k.Name, poller.MaxKind)})
		}
	}
	return out, nil
}
