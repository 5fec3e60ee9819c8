package faults

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is a TCP proxy between a client and a server, for faults that happen
// on the network rather than in either of them: an outage (Cut) and answers
// that arrive late (Hold). It knows nothing of the protocol it carries, so
// the client and the server are the real ones (a gRPC client and the
// Datastore emulator).
type Proxy struct {
	upstream string
	ln       net.Listener
	done     chan struct{}
	closing  sync.Once
	wg       sync.WaitGroup

	mu        sync.Mutex
	links     map[*link]bool
	downUntil time.Time
	holdUntil time.Time
	// hold numbers the holds; counted is the last one that held an answer.
	hold, counted int
	stats         ProxyStats
}

// ProxyStats counts the faults a Proxy injected.
type ProxyStats struct {
	// Cuts and Holds count the calls of Cut and Hold.
	Cuts, Holds int
	// Reset counts the connections closed by a cut, or refused during one.
	Reset int
	// Held counts the holds that held back at least one answer.
	Held int
}

// link is one client connection and the server connection it is joined to.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.server.Close()
	})
}

// NewProxy listens on a free loopback port and forwards every connection to
// upstream (host:port). Close stops it.
func NewProxy(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: upstream, ln: ln, done: make(chan struct{}), links: map[*link]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the host:port the client connects to instead of upstream.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut is an outage of d: every connection is closed now, and each new one is
// reset at once until d has passed.
func (p *Proxy) Cut(d time.Duration) {
	p.mu.Lock()
	p.stats.Cuts++
	p.downUntil = time.Now().Add(d)
	links := p.links
	p.links = map[*link]bool{}
	p.stats.Reset += len(links)
	p.mu.Unlock()
	for l := range links {
		l.close()
	}
}

// Hold makes the server's answers late by up to d: no byte the server sends
// before d has passed reaches the client before then, while the client's
// bytes flow on. A request made during the hold is carried out by the server
// and answered only when the hold ends: to a client whose deadline is
// shorter than d, a commit that happened looks like one that failed.
func (p *Proxy) Hold(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Holds++
	p.hold++
	if until := time.Now().Add(d); until.After(p.holdUntil) {
		p.holdUntil = until
	}
}

// Stats returns the faults injected so far.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end. Calls after the first do nothing.
func (p *Proxy) Close() error {
	var err error
	p.closing.Do(func() { err = p.close() })
	return err
}

func (p *Proxy) close() error {
	close(p.done)
	err := p.ln.Close()
	p.mu.Lock()
	links := p.links
	p.links = nil
	p.mu.Unlock()
	for l := range links {
		l.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: wait, as net/http does,
			// rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		p.wg.Add(1)
		go p.join(c)
	}
}

// join connects c to the server, unless the line is cut.
func (p *Proxy) join(c net.Conn) {
	defer p.wg.Done()
	if p.down() {
		reset(c)
		return
	}
	s, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		reset(c)
		return
	}
	l := &link{client: c, server: s, done: make(chan struct{})}
	p.mu.Lock()
	// A cut, or Close, may have come while dialling.
	if p.links == nil || time.Now().Before(p.downUntil) {
		if p.links != nil {
			p.stats.Reset++
		}
		p.mu.Unlock()
		l.close()
		return
	}
	p.links[l] = true
	p.mu.Unlock()
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(l, l.server, l.client, false) }()
	go func() { defer pumps.Done(); p.pump(l, l.client, l.server, true) }()
	pumps.Wait()
	l.close()
	p.mu.Lock()
	if p.links != nil {
		delete(p.links, l)
	}
	p.mu.Unlock()
}

// down tells whether the line is cut now, counting a refused connection.
func (p *Proxy) down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Now().Before(p.downUntil) {
		p.stats.Reset++
		return true
	}
	return false
}

// pump copies from src to dst until src ends; answers (held set) wait for
// any hold to end before they are written. The end of src is passed on as a
// half-close, so a client that waits for the end of an answer sees it; a
// failure closes the whole link.
func (p *Proxy) pump(l *link, dst, src net.Conn, held bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if held && !p.waitHold(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close()
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
				return
			}
		}
		if err != nil {
			l.close()
			return
		}
	}
}

// waitHold waits until no hold is in force; false if l closed meanwhile.
func (p *Proxy) waitHold(l *link) bool {
	for {
		p.mu.Lock()
		wait := time.Until(p.holdUntil)
		if wait > 0 && p.counted != p.hold {
			p.stats.Held++
			p.counted = p.hold
		}
		p.mu.Unlock()
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return false
		}
	}
}

// reset closes c with a TCP reset, as a port nobody serves answers.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
