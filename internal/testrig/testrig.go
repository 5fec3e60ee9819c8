// Package testrig wires a real poller to real peers for tests: the Admin
// client against adminfake, the store in memory (memstore, which keeps the
// same contract as the Datastore store) or on the Datastore emulator, Slack
// through slackfake, and a virtual clock.
package testrig

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/retry"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store"
	"github.com/dsexport/dsexport/store/memstore"
	"github.com/dsexport/dsexport/store/storetest"
)

// SlackToken and SlackChannel are what the rig's Slack notifier posts with.
const (
	SlackToken   = "xoxb-test-token"
	SlackChannel = "#backups"
)

// Clock is a virtual clock: After moves time forward and fires at once, so a
// poll loop runs through its intervals without sleeping.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After advances the virtual time by d and returns a channel that has fired.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// Advance moves the virtual time forward by d without a wait.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Waits returns every duration After was asked for, in order.
func (c *Clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// Sleeps stands in for a retry policy's Sleep: it records the waits instead
// of sleeping them.
type Sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

// Sleep records d and returns ctx's error, as a sleep cut short would.
func (s *Sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

// Waits returns the recorded waits, oldest first.
func (s *Sleeps) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// FreePort returns a TCP port on the loopback that nothing listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// SyncBuffer is an io.Writer that may be read while other goroutines write.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Store returns a store on the Datastore emulator in a project of its own,
// in the database serve keeps its records in by default (store.DefaultDatabase).
func Store(t testing.TB) (*store.Store, string) {
	t.Helper()
	host := emulatortest.Host(t)
	project := emulatortest.Project(t)
	st, err := store.NewIn(context.Background(), project, store.DefaultDatabase, option.WithEndpoint(host), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, project
}

// Rig is a poller and the peers it talks to.
type Rig struct {
	Admin       *adminfake.Server
	Slack       *slackfake.Server
	Store       storetest.Store
	Project     string
	Clock       *Clock
	Logs        *SyncBuffer
	Logger      *slog.Logger
	AdminClient *admin.Datastore
	Notifier    *notifier.Slack
	Poller      *poller.Poller
}

// New returns a rig on an in-memory store whose poller waits a virtual
// minute before each GET and makes at most maxPolls; configure changes the
// rest of its configuration. Its logs are shown if the test fails.
func New(t testing.TB, maxPolls int, configure ...func(*poller.Config)) *Rig {
	t.Helper()
	return NewOn(t, memstore.New(), emulatortest.Project(t), maxPolls, configure...)
}

// OnEmulator is New with the store on the Datastore emulator.
func OnEmulator(t testing.TB, maxPolls int, configure ...func(*poller.Config)) *Rig {
	t.Helper()
	st, project := Store(t)
	return NewOn(t, st, project, maxPolls, configure...)
}

// NewOn is New with st as the store and project as the exported project.
func NewOn(t testing.TB, st storetest.Store, project string, maxPolls int, configure ...func(*poller.Config)) *Rig {
	t.Helper()
	r := &Rig{
		Admin:   adminfake.New(t),
		Slack:   slackfake.New(t, SlackToken),
		Clock:   NewClock(time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)),
		Logs:    &SyncBuffer{},
		Store:   st,
		Project: project,
	}
	r.Logger = slog.New(slog.NewTextHandler(r.Logs, nil))
	var err error
	// Retries are off so that each poll is one GET and each report one post,
	// as the poller's tests count them; admin_test and notifier_test test them.
	noRetry := retry.Policy{Attempts: 1}
	if r.AdminClient, err = admin.NewDatastore(context.Background(), r.Admin.URL(), nil, admin.WithRetry(noRetry)); err != nil {
		t.Fatal(err)
	}
	if r.Notifier, err = notifier.NewSlackBot(SlackToken, SlackChannel, time.UTC, notifier.WithAPIURL(r.Slack.URL()), notifier.WithRetry(noRetry)); err != nil {
		t.Fatal(err)
	}
	cfg := poller.Config{
		Admin: r.AdminClient, Store: r.Store, Notifier: r.Notifier, Clock: r.Clock, Logger: r.Logger,
		Interval: time.Minute, MaxPolls: maxPolls,
	}
	for _, f := range configure {
		f(&cfg)
	}
	r.Poller = poller.New(cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("poller logs:\n%s", r.Logs.String())
		}
	})
	return r
}
