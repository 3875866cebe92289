package server

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLogWriterKeepsEveryLineInOrder: concurrent writers lose no line, each writer's lines stay in
// order, and Close writes what was still waiting.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	out := &syncBuffer{}
	w := NewLogWriter(out)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				fmt.Fprintf(w, "g%d %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, line := range lines {
		var g string
		var i int
		if _, err := fmt.Sscanf(line, "%s %d", &g, &i); err != nil || i != next[g] {
			t.Fatalf("line %q out of order or torn (want %s %d)", line, g, next[g])
		}
		next[g]++
	}
	if len(lines) != 8000 {
		t.Errorf("%d lines written, want 8000", len(lines))
	}
	// After Close, lines go straight to out.
	fmt.Fprintf(w, "late\n")
	if !strings.HasSuffix(out.String(), "g3 1999\nlate\n") && !strings.HasSuffix(out.String(), "\nlate\n") {
		t.Errorf("a line written after Close is missing: %q", out.String()[len(out.String())-20:])
	}
}

// blockingWriter holds every write until released, as a pipe nobody reads does.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// TestLogWriterIsBounded: when out stops taking lines, Write waits once LogBufferBytes wait
// (beside the batch that out holds), instead of growing without end; the lines follow once out
// drains.
func TestLogWriterIsBounded(t *testing.T) {
	out := &blockingWriter{release: make(chan struct{})}
	w := NewLogWriter(out)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	written := make(chan int)
	go func() {
		n := 0
		for range 3 * LogBufferBytes / len(line) {
			_, _ = w.Write(line)
			n++
		}
		written <- n
	}()
	select {
	case n := <-written:
		t.Fatalf("%d lines queued while out took none", n)
	case <-time.After(200 * time.Millisecond):
	}
	close(out.release)
	<-written
	_ = w.Close()
	if got, want := out.buf.Len(), 3*LogBufferBytes; got != want {
		t.Errorf("%d bytes written, want %d", got, want)
	}
}

// countingWriter counts the writes it is given, as the write(2) calls on stdout.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) counts() (writes, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.buf.Len()
}

// TestLogWriterWritesInBatches: request lines leave LogBatchBytes or more at a time, not one or
// two per write(2); a lone line leaves within LogFlushInterval, without waiting for Close.
func TestLogWriterWritesInBatches(t *testing.T) {
	out := &countingWriter{}
	w := NewLogWriter(out)
	line := []byte(strings.Repeat("x", 199) + "\n")
	const lines = 1000
	started := time.Now()
	for range lines {
		_, _ = w.Write(line)
		time.Sleep(10 * time.Microsecond) // lines come apart, as requests end
	}
	_ = w.Close()
	ticks := int(time.Since(started) / LogFlushInterval)
	writes, n := out.counts()
	if n != lines*len(line) {
		t.Fatalf("%d bytes written, want %d", n, lines*len(line))
	}
	// Full batches, plus one the ticker took early each LogFlushInterval, plus Close's.
	if most := lines*len(line)/LogBatchBytes + ticks + 2; writes > most {
		t.Errorf("%d writes for %d lines, want at most %d (batches of %d bytes)", writes, lines, most, LogBatchBytes)
	}

	out = &countingWriter{}
	w = NewLogWriter(out)
	defer w.Close()
	_, _ = w.Write([]byte("alone\n"))
	deadline := time.Now().Add(LogFlushInterval + time.Second)
	for {
		if _, n := out.counts(); n == len("alone\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a lone line was not written within %v", LogFlushInterval+time.Second)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
