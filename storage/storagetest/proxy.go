package storagetest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// StallProxy is a TCP proxy in front of a server that can stop forwarding
// bytes on command, in both directions and on every connection, old and
// new, as a frozen server or a silent network would: connections are
// still accepted, and what was sent waits in buffers. It can also forward
// slowly (SetRate), for transfers that are long but never still.
type StallProxy struct {
	Addr string // 127.0.0.1:port to connect to

	target string
	l      net.Listener

	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
	rate    int // bytes per second per direction and connection; 0: no limit
	closed  bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// proxyBuffer is the socket buffer size of the proxy's connections.
const proxyBuffer = 128 << 10

// NewStallProxy starts a proxy to target (host:port) that stops when the
// test ends.
func NewStallProxy(t testing.TB, target string) *StallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &StallProxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Stall stops forwarding until Resume.
func (p *StallProxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Resume forwards again.
func (p *StallProxy) Resume() {
	p.mu.Lock()
	p.stalled = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// SetRate limits forwarding to about bytesPerSecond in each direction of
// each connection (0: no limit).
func (p *StallProxy) SetRate(bytesPerSecond int) {
	p.mu.Lock()
	p.rate = bytesPerSecond
	p.mu.Unlock()
}

// Close stops the proxy and drops its connections.
func (p *StallProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.stalled = false
	p.cond.Broadcast()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.l.Close()
	p.wg.Wait()
}

func (p *StallProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		// Small socket buffers keep what a stall or a slow rate holds
		// back in the proxy, not in the kernel of either side.
		for _, conn := range []net.Conn{c, s} {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetReadBuffer(proxyBuffer)
				tc.SetWriteBuffer(proxyBuffer)
			}
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.wg.Add(3)
		p.mu.Unlock()
		var pair sync.WaitGroup
		pair.Add(2)
		go func() { defer pair.Done(); p.pipe(s, c) }()
		go func() { defer pair.Done(); p.pipe(c, s) }()
		go func() {
			defer p.wg.Done()
			pair.Wait()
			c.Close()
			s.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, s)
			p.mu.Unlock()
		}()
	}
}

// pipe copies src to dst, holding whatever it read while stalled, and
// passes the end of src on as a half close of dst.
func (p *StallProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		if !p.wait() {
			return
		}
		chunk := buf
		if r := p.currentRate(); r > 0 {
			chunk = buf[:max(min(len(buf), r/50), 1)]
		}
		n, err := src.Read(chunk)
		if n > 0 {
			if !p.wait() {
				return
			}
			if r := p.currentRate(); r > 0 {
				time.Sleep(time.Duration(n) * time.Second / time.Duration(r))
			}
			if _, werr := dst.Write(chunk[:n]); werr != nil {
				src.Close() // the other side is gone: stop reading too
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wait blocks while stalled; false once the proxy is closed.
func (p *StallProxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.stalled && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

func (p *StallProxy) currentRate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}
