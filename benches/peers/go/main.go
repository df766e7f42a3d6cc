// The Go peer of the axum-longpoll benchmarks: the long-poll idiom of the
// seed articles, standard library only. Each request selects over an event
// (a broadcast channel closed on publish), a timer, the server's shutdown and
// r.Context().Done() (the client is gone).
//
// Same HTTP interface as the two Rust bench servers (benches/longpoll):
//
//	GET  /poll?id=N    long-poll; 200 JSON event, 204 timeout, 503 shutdown
//	GET  /poll?id=N&cursor=C  the events after C at once, else the next ones
//	                   (the publish storm: pollers resume with their cursor)
//	POST /publish      wake every parked poll with one event
//	GET  /plain        "ok"
//	GET  /stats        "parked=N"
//	GET  /detections   "id unix_nanos" per disconnect seen since the last call
//	GET  /fanout       "publish_ns last_answer_ns answered" since the last publish
//	POST /shutdown     answer parked polls 503, stop, exit
//
// Listens on ADDR (default 127.0.0.1:0) and prints "LISTEN <addr>". Exits
// when its standard input closes (the harness went away).
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const pollTimeout = 120 * time.Second

// generation is one broadcast: ch is closed when msg is set.
type generation struct {
	ch  chan struct{}
	msg []byte
}

// retained is how many events the hub keeps for polls with a cursor (as
// the Rust servers); maxBatch the most events in one answer.
const (
	retained = 1024
	maxBatch = 100
)

type event struct {
	seq  uint64
	data string
}

type hub struct {
	mu   sync.Mutex
	cur  *generation
	seq  uint64
	ring []event
}

func newHub() *hub { return &hub{cur: &generation{ch: make(chan struct{})}} }

func (h *hub) current() *generation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

func (h *hub) publish(data string) {
	h.mu.Lock()
	h.seq++
	g := h.cur
	g.msg = []byte(fmt.Sprintf(`{"events":[{"id":"%d","data":%q}],"cursor":"%d"}`, h.seq, data, h.seq))
	if len(h.ring) == retained {
		copy(h.ring, h.ring[1:])
		h.ring = h.ring[:retained-1]
	}
	h.ring = append(h.ring, event{h.seq, data})
	h.cur = &generation{ch: make(chan struct{})}
	h.mu.Unlock()
	close(g.ch)
}

type detection struct {
	id uint64
	at int64
}

var (
	events     = newHub()
	shutdownCh = make(chan struct{})
	stopOnce   sync.Once
	parked     atomic.Int64
	publishNs  atomic.Int64
	lastNs     atomic.Int64
	answered   atomic.Int64
	detMu      sync.Mutex
	detections []detection
)

func pollID(r *http.Request) uint64 {
	id, _ := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
	return id
}

// after returns the events after cursor (at most maxBatch) and the
// generation to wait on when there are none.
func (h *hub) after(cursor uint64) ([]event, *generation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.ring), func(i int) bool { return h.ring[i].seq > cursor })
	n := len(h.ring) - i
	if n > maxBatch {
		n = maxBatch
	}
	out := make([]event, n)
	copy(out, h.ring[i:i+n])
	return out, h.cur
}

// pollCursor answers the events after the client's cursor at once, or
// waits for the next ones.
func pollCursor(w http.ResponseWriter, r *http.Request, id uint64, cursor uint64) {
	parked.Add(1)
	timer := time.NewTimer(pollTimeout)
	defer timer.Stop()
	for {
		evs, g := events.after(cursor)
		if len(evs) > 0 {
			parked.Add(-1)
			var b strings.Builder
			b.WriteString(`{"events":[`)
			for i, e := range evs {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"id":"%d","data":%q}`, e.seq, e.data)
			}
			fmt.Fprintf(&b, `],"cursor":"%d"}`, evs[len(evs)-1].seq)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, b.String())
			answered.Add(1)
			return
		}
		select {
		case <-r.Context().Done():
			at := time.Now().UnixNano()
			parked.Add(-1)
			detMu.Lock()
			detections = append(detections, detection{id, at})
			detMu.Unlock()
			return
		case <-shutdownCh:
			parked.Add(-1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case <-g.ch:
		case <-timer.C:
			parked.Add(-1)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

func poll(w http.ResponseWriter, r *http.Request) {
	id := pollID(r)
	if c := r.URL.Query().Get("cursor"); c != "" {
		if cursor, err := strconv.ParseUint(c, 10, 64); err == nil {
			pollCursor(w, r, id, cursor)
			return
		}
	}
	g := events.current()
	parked.Add(1)
	timer := time.NewTimer(pollTimeout)
	defer timer.Stop()
	select {
	case <-r.Context().Done():
		at := time.Now().UnixNano()
		parked.Add(-1)
		detMu.Lock()
		detections = append(detections, detection{id, at})
		detMu.Unlock()
	case <-shutdownCh:
		parked.Add(-1)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "server is shutting down; retry")
	case <-g.ch:
		parked.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(g.msg)
		now := time.Now().UnixNano()
		for {
			old := lastNs.Load()
			if now <= old || lastNs.CompareAndSwap(old, now) {
				break
			}
		}
		answered.Add(1)
	case <-timer.C:
		parked.Add(-1)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}

func publish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64*1024))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	lastNs.Store(0)
	answered.Store(0)
	publishNs.Store(time.Now().UnixNano())
	events.publish(string(body))
	io.WriteString(w, "ok")
}

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/poll", poll)
	mux.HandleFunc("/publish", publish)
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "parked=%d", parked.Load())
	})
	mux.HandleFunc("/detections", func(w http.ResponseWriter, r *http.Request) {
		detMu.Lock()
		taken := detections
		detections = nil
		detMu.Unlock()
		var b strings.Builder
		for _, d := range taken {
			fmt.Fprintf(&b, "%d %d\n", d.id, d.at)
		}
		io.WriteString(w, b.String())
	})
	mux.HandleFunc("/fanout", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d %d %d", publishNs.Load(), lastNs.Load(), answered.Load())
	})
	done := make(chan struct{})
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, r *http.Request) {
		stopOnce.Do(func() {
			close(shutdownCh)
			go func() {
				srv.Shutdown(context.Background())
				close(done)
			}()
		})
		w.Header().Set("Connection", "close")
		io.WriteString(w, "stopping")
	})
	srv.Handler = mux
	go func() {
		// The harness holds our stdin; when it is gone, so are we.
		io.Copy(io.Discard, os.Stdin)
		os.Exit(2)
	}()
	fmt.Printf("LISTEN %s\n", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-done
}
