package store

import (
	"io"
	"sync"
)

// asyncWriter hands writes on to w from another goroutine, so that reading
// and hashing the tree runs on one core while the compressor behind w runs
// on another. The bytes and their order are unchanged; only the cuts
// between writes differ, and the compressors' output does not depend on
// them (TestCompressorsIgnoreWriteSizes), so exports stay deterministic.
type asyncWriter struct {
	buf  []byte
	full chan []byte
	free chan []byte
	done chan struct{}

	mu  sync.Mutex
	err error // the first error of w
}

const (
	asyncChunk  = 1 << 20
	asyncChunks = 4
)

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{full: make(chan []byte, asyncChunks), free: make(chan []byte, asyncChunks), done: make(chan struct{})}
	for range asyncChunks {
		a.free <- make([]byte, 0, asyncChunk)
	}
	a.buf = <-a.free
	go func() {
		defer close(a.done)
		for b := range a.full {
			if a.failed() == nil {
				if _, err := w.Write(b); err != nil {
					a.mu.Lock()
					a.err = err
					a.mu.Unlock()
				}
			}
			a.free <- b[:0]
		}
	}()
	return a
}

func (a *asyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *asyncWriter) Write(p []byte) (int, error) {
	if a.buf == nil {
		return 0, io.ErrClosedPipe
	}
	n := 0
	for len(p) > 0 {
		if err := a.failed(); err != nil {
			return n, err
		}
		k := copy(a.buf[len(a.buf):cap(a.buf)], p)
		a.buf, p, n = a.buf[:len(a.buf)+k], p[k:], n+k
		if len(a.buf) == cap(a.buf) {
			a.full <- a.buf
			a.buf = <-a.free
		}
	}
	return n, nil
}

// Close writes what is buffered, waits for the goroutine and returns the
// first error of w. It may be called more than once.
func (a *asyncWriter) Close() error {
	if a.buf != nil {
		if len(a.buf) > 0 {
			a.full <- a.buf
		}
		a.buf = nil
		close(a.full)
		<-a.done
	}
	return a.failed()
}

// asyncReader reads r ahead from another goroutine, so that decompressing
// a layer runs on one core while its entries are written on another.
type asyncReader struct {
	full  chan []byte // read chunks, closed at the end of r
	free  chan []byte
	stop  chan struct{}
	done  chan struct{}
	chunk []byte // the chunk being consumed
	cur   []byte // what is left of it
	err   error  // why r ended (io.EOF at its end); read once full is closed
}

func newAsyncReader(r io.Reader) *asyncReader {
	a := &asyncReader{full: make(chan []byte, asyncChunks), free: make(chan []byte, asyncChunks),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range asyncChunks {
		a.free <- make([]byte, asyncChunk)
	}
	go func() {
		defer close(a.done)
		defer close(a.full)
		for {
			var b []byte
			select {
			case b = <-a.free:
			case <-a.stop:
				return
			}
			n, err := io.ReadFull(r, b)
			if n > 0 {
				select {
				case a.full <- b[:n]:
				case <-a.stop:
					return
				}
			}
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			if err != nil {
				a.err = err
				return
			}
		}
	}()
	return a
}

func (a *asyncReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.chunk != nil {
			a.free <- a.chunk[:cap(a.chunk)]
			a.chunk = nil
		}
		b, ok := <-a.full
		if !ok {
			return 0, a.err
		}
		a.chunk, a.cur = b, b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close stops the goroutine and waits for it: r is not read once Close
// returns. It may be called more than once.
func (a *asyncReader) Close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}
