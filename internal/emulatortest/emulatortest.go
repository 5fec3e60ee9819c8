// Package emulatortest gives tests a real Cloud Datastore emulator: the one in
// DATASTORE_EMULATOR_HOST when it is set (.ci/run starts one), otherwise one
// started from the gcloud on PATH for the test binary.
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

// emulator is the one started by this test binary, if any.
type emulator struct {
	once sync.Once
	host string
	err  error
	cmd  *exec.Cmd
	dir  string
}

// started is shared by the tests of one package: starting an emulator takes
// seconds, and tests keep apart by using their own project IDs (Project).
var started emulator

// Main runs the package's tests and stops the emulator they started, if any.
// Call it from TestMain: os.Exit(emulatortest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	started.stop()
	return code
}

// Host returns host:port of a running Datastore emulator. Without one and
// without gcloud the test is skipped, or fails when CI=true.
func Host(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("DATASTORE_EMULATOR_HOST"); h != "" {
		return h
	}
	started.once.Do(started.start)
	if started.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Datastore emulator needed in CI: %v", started.err)
		}
		t.Skipf("skipping: no Datastore emulator (%v); set DATASTORE_EMULATOR_HOST or install gcloud's cloud-datastore-emulator", started.err)
	}
	return started.host
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

// Dir is the emulator's working directory, where its exports are written; empty
// when the emulator was not started by this binary.
func Dir() string { return started.dir }

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
	cmd := exec.Command(gcloud, "beta", "emulators", "datastore", "start",
		"--project=dsexport-test", "--no-store-on-disk", "--use-firestore-in-datastore-mode",
		"--data-dir="+filepath.Join(dir, "data"), "--host-port="+host)
	// The emulator writes exports relative to its working directory.
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// gcloud starts a Java child: give both a process group to stop together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.err = fmt.Errorf("start emulator: %w", err)
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
