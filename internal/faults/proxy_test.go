package faults

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineServer answers each line "ok LINE" and, at the end of its input,
// "bye"; it notes when each line arrived.
type lineServer struct {
	ln net.Listener
	mu sync.Mutex
	at map[string]time.Time
}

func newLineServer(t *testing.T) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{ln: ln, at: map[string]time.Time{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					s.mu.Lock()
					s.at[sc.Text()] = time.Now()
					s.mu.Unlock()
					c.Write([]byte("ok " + sc.Text() + "\n"))
				}
				c.Write([]byte("bye\n"))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *lineServer) arrived(line string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[line]
}

func newProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := NewProxy(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// ask sends line on c and returns the answer line, or the read error.
func ask(t *testing.T, c net.Conn, r *bufio.Reader, line string) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestProxyForwardsBothWaysAndTheEnd(t *testing.T) {
	p := newProxy(t, newLineServer(t).ln.Addr().String())
	c, r := dial(t, p)
	if got, err := ask(t, c, r, "a"); err != nil || got != "ok a" {
		t.Fatalf("ask a = %q, %v; want \"ok a\"", got, err)
	}
	// The client's half-close reaches the server, whose last words reach
	// the client.
	c.(*net.TCPConn).CloseWrite()
	if got, err := r.ReadString('\n'); err != nil || got != "bye\n" {
		t.Fatalf("after CloseWrite read %q, %v; want \"bye\\n\"", got, err)
	}
}

func TestProxyHoldDeliversTheRequestAndDelaysTheAnswer(t *testing.T) {
	s := newLineServer(t)
	p := newProxy(t, s.ln.Addr().String())
	c, r := dial(t, p)
	if _, err := ask(t, c, r, "warm"); err != nil {
		t.Fatal(err)
	}
	const hold = 400 * time.Millisecond
	start := time.Now()
	p.Hold(hold)
	got, err := ask(t, c, r, "commit")
	answered := time.Since(start)
	if err != nil || got != "ok commit" {
		t.Fatalf("ask commit = %q, %v; want \"ok commit\"", got, err)
	}
	if answered < hold {
		t.Errorf("answer came after %v; want no sooner than the hold's %v", answered, hold)
	}
	if arrived := s.arrived("commit").Sub(start); arrived > hold/2 {
		t.Errorf("request reached the server after %v; want at once, the hold is on answers only", arrived)
	}
	// Once the hold is over answers flow again.
	start = time.Now()
	if _, err := ask(t, c, r, "after"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > hold/2 {
		t.Errorf("answer after the hold took %v; want it at once", d)
	}
	if st := p.Stats(); st.Holds != 1 || st.Held != 1 {
		t.Errorf("Stats = %+v; want 1 hold that held an answer", st)
	}
}

func TestProxyCutClosesAndRefusesUntilItEnds(t *testing.T) {
	p := newProxy(t, newLineServer(t).ln.Addr().String())
	c, r := dial(t, p)
	if _, err := ask(t, c, r, "before"); err != nil {
		t.Fatal(err)
	}
	const outage = 400 * time.Millisecond
	start := time.Now()
	p.Cut(outage)
	if got, err := ask(t, c, r, "during"); err == nil {
		t.Fatalf("a connection open at the cut answered %q; want it closed", got)
	}
	// A connection made during the cut is reset: the dial or the first
	// exchange fails.
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		defer c2.Close()
		if got, err := ask(t, c2, bufio.NewReader(c2), "new during"); err == nil {
			t.Fatalf("a connection made during the cut answered %q; want it reset", got)
		}
	}
	if d := time.Since(start); d > outage {
		t.Fatalf("the failures took %v; want them at once", d)
	}
	time.Sleep(time.Until(start.Add(outage + 50*time.Millisecond)))
	c3, r3 := dial(t, p)
	if got, err := ask(t, c3, r3, "after"); err != nil || got != "ok after" {
		t.Fatalf("after the cut: ask = %q, %v; want \"ok after\"", got, err)
	}
	if st := p.Stats(); st.Cuts != 1 || st.Reset != 2 {
		t.Errorf("Stats = %+v; want 1 cut and 2 connections reset", st)
	}
}

func TestProxyCloseEndsConnectionsAndListening(t *testing.T) {
	p, err := NewProxy(newLineServer(t).ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, r := dial(t, p)
	if _, err := ask(t, c, r, "a"); err != nil {
		t.Fatal(err)
	}
	p.Hold(time.Hour) // Close must not wait for a hold.
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := ask(t, c, r, "b"); err == nil {
		t.Error("a connection answered after Close")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts connections after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
}
