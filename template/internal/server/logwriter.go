package server

import (
	"io"
	"sync"
	"time"
)

// LogBufferBytes bounds the log lines waiting for stdout (about a thousand request lines).
const LogBufferBytes = 256 << 10

// LogBatchBytes and LogFlushInterval: the goroutine writes once this many bytes wait, or once
// the first of them has waited this long, whichever comes first (the Node service's pino
// destination uses the same two numbers).
const (
	LogBatchBytes    = 4 << 10
	LogFlushInterval = 100 * time.Millisecond
)

// logBufferCap is the starting size of each of the two buffers (the goroutine writes one while
// the handlers fill the other).
const logBufferCap = 16 << 10

// LogWriter puts log lines on out (stdout) from one goroutine of its own, so that a request never
// waits for the write(2) to a pipe that the container runtime drains at its own pace, and slog's
// handler does not hold its lock across it: logging a line costs a copy into a buffer. Lines
// leave in batches, one write(2) for everything that waits: when LogBatchBytes have gathered, or
// every LogFlushInterval. (Writing whenever woken, the goroutine took one or two lines at a time
// under load: 0.8 write(2) and a goroutine wake-up per request, issue 15.)
//
// The buffer is bounded: when LogBufferBytes wait while out still takes the previous batch,
// Write waits for room (the behaviour of a direct write to a full pipe) rather than grow or drop
// lines. At most two buffers exist: the one being written and the one being filled. Close writes what
// is left; Main closes it before the process exits, so a clean shutdown loses no line.
type LogWriter struct {
	out io.Writer

	mu     sync.Mutex
	room   sync.Cond // signalled when the goroutine takes the buffer
	buf    []byte    // lines waiting for the goroutine
	closed bool

	wake chan struct{} // one pending wake-up at most: a batch is ready
	quit chan struct{}
	done chan struct{} // the goroutine has written its last batch
}

// NewLogWriter starts the goroutine that writes to out.
func NewLogWriter(out io.Writer) *LogWriter {
	w := &LogWriter{
		out:  out,
		buf:  make([]byte, 0, logBufferCap),
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	w.room.L = &w.mu
	go w.run()
	return w
}

// Write queues p, one complete line from slog's handler (which calls Write once per line).
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for !w.closed && len(w.buf) > 0 && len(w.buf)+len(p) > LogBufferBytes {
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // the last batch is out: later lines follow it, in order
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= LogBatchBytes
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default: // a wake-up is pending: the goroutine takes this line with the others
		}
	}
	return len(p), nil
}

// Close writes the lines still waiting and stops the goroutine; later writes go to out directly.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	close(w.quit)
	<-w.done
	return nil
}

func (w *LogWriter) run() {
	defer close(w.done)
	spare := make([]byte, 0, logBufferCap)
	tick := time.NewTicker(LogFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.wake:
		case <-tick.C:
		case <-w.quit:
			w.mu.Lock()
			last := w.buf
			w.buf = nil
			w.mu.Unlock()
			if len(last) > 0 {
				_, _ = w.out.Write(last)
			}
			return
		}
		w.mu.Lock()
		batch := w.buf
		w.buf = spare[:0]
		w.room.Broadcast()
		w.mu.Unlock()
		if len(batch) > 0 {
			// A failed write (stdout closed) is not reported: there is nowhere left to report it.
			_, _ = w.out.Write(batch)
		}
		spare = batch
	}
}
