// Package emulatortest gives tests the two real store emulators that ship with
// gcloud: the Cloud Datastore emulator (optimistic locking) and the Firestore
// emulator in Datastore mode (pessimistic locking, as new Firestore in
// Datastore mode databases lock). Each is the one its environment variable
// names when set (.ci/run starts both), otherwise one started from the gcloud
// on PATH for the test binary.
package emulatortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FirestoreHostEnv names the variable that points tests at a running
// Firestore emulator in Datastore mode, as DATASTORE_EMULATOR_HOST points
// them at the Datastore emulator. It is not FIRESTORE_EMULATOR_HOST, which
// Firestore's own client libraries read for the native mode.
const FirestoreHostEnv = "FIRESTORE_DATASTORE_EMULATOR_HOST"

// emulator is one started by this test binary, if any.
type emulator struct {
	what string // in messages: "Datastore emulator"
	env  string // the variable naming a running one
	// hint says how to get one when none can be had.
	hint string
	// args are gcloud's arguments, given the emulator's own directory and
	// the host:port it is to listen on.
	args func(dir, host string) []string

	once sync.Once
	host string
	err  error
	cmd  *exec.Cmd
	dir  string
}

// Both emulators are shared by the tests of one package: starting one takes
// seconds, and tests keep apart by using their own project IDs (Project).
var (
	datastoreEmulator = emulator{
		what: "Datastore emulator",
		env:  "DATASTORE_EMULATOR_HOST",
		hint: "set DATASTORE_EMULATOR_HOST or install gcloud's cloud-datastore-emulator",
		args: func(dir, host string) []string {
			return []string{"beta", "emulators", "datastore", "start",
				"--project=dsexport-test", "--no-store-on-disk", "--use-firestore-in-datastore-mode",
				"--data-dir=" + filepath.Join(dir, "data"), "--host-port=" + host}
		},
	}
	// The Firestore emulator takes any project ID unless told to keep to
	// one, and keeps its data in memory.
	firestoreEmulator = emulator{
		what: "Firestore emulator in Datastore mode",
		env:  FirestoreHostEnv,
		hint: "set " + FirestoreHostEnv + " or install gcloud's cloud-firestore-emulator",
		args: func(_, host string) []string {
			return []string{"emulators", "firestore", "start", "--database-mode=datastore-mode", "--host-port=" + host}
		},
	}
)

// Main runs the package's tests and stops the emulators they started, if
// any. Call it from TestMain: os.Exit(emulatortest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	datastoreEmulator.stop()
	firestoreEmulator.stop()
	return code
}

// Host returns host:port of a running Datastore emulator. Without one and
// without gcloud the test is skipped, or fails when CI=true.
func Host(t testing.TB) string {
	t.Helper()
	return datastoreEmulator.hostFor(t)
}

// FirestoreHost returns host:port of a running Firestore emulator in
// Datastore mode: the one in FIRESTORE_DATASTORE_EMULATOR_HOST, or one
// started for the test binary. Without one and without gcloud the test is
// skipped, or fails when CI=true. The Datastore client reaches it as it
// reaches the Datastore emulator (option.WithEndpoint, or
// DATASTORE_EMULATOR_HOST set to this address).
func FirestoreHost(t testing.TB) string {
	t.Helper()
	return firestoreEmulator.hostFor(t)
}

func (e *emulator) hostFor(t testing.TB) string {
	t.Helper()
	if h := os.Getenv(e.env); h != "" {
		return h
	}
	e.once.Do(e.start)
	if e.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s needed in CI: %v", e.what, e.err)
		}
		t.Skipf("skipping: no %s (%v); %s", e.what, e.err, e.hint)
	}
	return e.host
}

// Project returns a project ID of its own for t, so that tests sharing one
// emulator never see each other's entities.
func Project(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "test-" + hex.EncodeToString(b[:])
}

// Dir is the Datastore emulator's working directory, where its exports are
// written; empty when the emulator was not started by this binary.
func Dir() string { return datastoreEmulator.dir }

func (e *emulator) start() {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		e.err = err
		return
	}
	port, err := freePort()
	if err != nil {
		e.err = err
		return
	}
	dir, err := os.MkdirTemp("", "dsexport-emulator-")
	if err != nil {
		e.err = err
		return
	}
	e.dir = dir
	logf, err := os.Create(filepath.Join(dir, "emulator.log"))
	if err != nil {
		e.err = err
		return
	}
	defer logf.Close()
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(gcloud, e.args(dir, host)...)
	// The Datastore emulator writes exports relative to its working directory.
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// gcloud starts a Java child: give both a process group to stop together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.err = fmt.Errorf("start %s: %w", e.what, err)
		return
	}
	e.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitReady(host, exited, 90*time.Second); err != nil {
		log, _ := os.ReadFile(logf.Name())
		e.stop()
		e.err = fmt.Errorf("%w; emulator log:\n%s", err, tail(string(log), 2000))
		return
	}
	e.host = host
}

// waitReady waits until the emulator on host answers GET / with 200: both
// emulators do ("Ok") once they serve.
func waitReady(host string, exited <-chan error, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("emulator exited before it was ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("emulator not ready on %s after %s", host, limit)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (e *emulator) stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		pgid := e.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && syscall.Kill(-pgid, 0) == nil {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
