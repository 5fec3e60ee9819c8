package faultrun

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/emulatortest"
)

// An emulator is a store target of the run: its name in subtest names and
// FAULTRUN_EMULATOR, and how to get the host:port of a running one.
type emulator struct {
	name string
	host func(t testing.TB) string
}

// emulators are the store targets, in the order they run.
var emulators = []emulator{
	// The Datastore emulator: optimistic locking (a conflicting commit
	// fails at once).
	{"datastore", emulatortest.Host},
	// The Firestore emulator in Datastore mode: pessimistic locking (a
	// conflicting commit waits), as new Firestore in Datastore mode
	// databases lock.
	{"firestore", firestoreHost},
}

// selectedEmulators are the targets FAULTRUN_EMULATOR names (a
// comma-separated list; default both).
func selectedEmulators(t *testing.T) []emulator {
	want := os.Getenv("FAULTRUN_EMULATOR")
	if want == "" {
		return emulators
	}
	var out []emulator
	for _, name := range strings.Split(want, ",") {
		found := false
		for _, e := range emulators {
			if e.name == strings.TrimSpace(name) {
				out = append(out, e)
				found = true
			}
		}
		if !found {
			t.Fatalf("FAULTRUN_EMULATOR=%q: unknown emulator %q; want datastore and/or firestore", want, name)
		}
	}
	return out
}

// firestore is the Firestore emulator this test binary started, if any.
// When internal/emulatortest gains a shared helper for it, firestoreHost
// becomes a call of that.
var firestore struct {
	once sync.Once
	host string
	err  error
	cmd  *exec.Cmd
	// exited is closed when the shell around gcloud has ended.
	exited  chan struct{}
	dir     string
	pidFile string
}

// firestoreHost returns host:port of a Firestore emulator in Datastore mode:
// FAULTRUN_FIRESTORE_HOST when set, otherwise one started from the gcloud on
// PATH for this test binary (stopped by stopFirestore). Without one the test
// is skipped, or fails when CI=true.
func firestoreHost(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("FAULTRUN_FIRESTORE_HOST"); h != "" {
		return h
	}
	firestore.once.Do(startFirestore)
	if firestore.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Firestore emulator needed in CI: %v", firestore.err)
		}
		t.Skipf("skipping: no Firestore emulator (%v); set FAULTRUN_FIRESTORE_HOST or install gcloud's cloud-firestore-emulator", firestore.err)
	}
	return firestore.host
}

func startFirestore() {
	f := &firestore
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		f.err = err
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.err = err
		return
	}
	host := l.Addr().String()
	l.Close()
	if f.dir, err = os.MkdirTemp("", "dsexport-firestore-"); err != nil {
		f.err = err
		return
	}
	logf, err := os.Create(filepath.Join(f.dir, "emulator.log"))
	if err != nil {
		f.err = err
		return
	}
	defer logf.Close()
	// gcloud puts itself and its Java child in a process group of its own.
	// The shell around it stops that group when told to (stopFirestore) and
	// when this test binary goes away without telling it (killed by a
	// timeout), so that no emulator is left behind; it ends when gcloud
	// does. It writes the group's id to a file, for a last SIGKILL.
	pidFile := filepath.Join(f.dir, "emulator.pid")
	cmd := exec.Command("sh", "-c", `"$0" emulators firestore start --database-mode=datastore-mode --host-port="$1" &
child=$!
echo $child >"$2"
stop() { kill -TERM -$child 2>/dev/null || kill -TERM $child 2>/dev/null; }
trap 'stop; exit 0' TERM
while kill -0 $PPID 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done
stop`, gcloud, host, pidFile)
	cmd.Dir = f.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	f.pidFile = pidFile
	if err := cmd.Start(); err != nil {
		f.err = fmt.Errorf("start Firestore emulator: %w", err)
		return
	}
	f.cmd = cmd
	f.exited = make(chan struct{})
	exited := make(chan error, 1)
	go func() { err := cmd.Wait(); close(f.exited); exited <- err }()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				f.host = host
				return
			}
		}
		select {
		case err := <-exited:
			f.err = fmt.Errorf("Firestore emulator exited before it was ready: %v%s", err, logTail(logf.Name()))
			return
		case <-ctx.Done():
			f.err = fmt.Errorf("Firestore emulator not ready on %s after 90s%s", host, logTail(logf.Name()))
			stopFirestore()
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; emulator log:\n" + string(b)
}

// stopFirestore stops the emulator startFirestore started, if any.
func stopFirestore() {
	f := &firestore
	if f.cmd != nil && f.cmd.Process != nil {
		_ = f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.exited:
		case <-time.After(10 * time.Second):
		}
		if b, err := os.ReadFile(f.pidFile); err == nil {
			if pgid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pgid > 1 {
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) && syscall.Kill(-pgid, 0) == nil {
					time.Sleep(100 * time.Millisecond)
				}
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}
		f.cmd = nil
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
		f.dir = ""
	}
}
