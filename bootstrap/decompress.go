package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"jailmgr/debian/compress"
)

// xzPath is the host's xz, if it has one. liblzma decodes about twice as
// fast as the pure-Go decoder, and xz is most of the bootstrap's CPU time
// (the Debian and Ubuntu archives compress indexes and .debs with it).
var xzPath = sync.OnceValue(func() string {
	p, err := exec.LookPath("xz")
	if err != nil {
		return ""
	}
	return p
})

// smallXZ is the most an .xz member may hold, compressed and decoded, to
// be decoded in this process. Most control.tar members and many data.tar
// ones are that small; there a process start costs more than the slower
// decoder (see decompress).
const smallXZ = 128 << 10

// smallBufs hold the head of an .xz member while decompress looks at it.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallXZ+1); return &b }}

// decompress opens a compressed stream by its name's suffix. A small .xz
// is decoded here, in memory; a larger one by the host's xz when there is
// one, and the pure-Go decoders otherwise.
func decompress(name string, r io.Reader) (io.ReadCloser, error) {
	if !strings.HasSuffix(name, ".xz") {
		return compress.NewReader(name, r)
	}
	buf := smallBufs.Get().(*[]byte)
	n, err := io.ReadFull(r, *buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		smallBufs.Put(buf)
		return nil, err
	}
	if n <= smallXZ {
		out, err := compress.DecodeSmallXZ((*buf)[:n], smallXZ)
		if err == nil {
			smallBufs.Put(buf)
			return io.NopCloser(bytes.NewReader(out)), nil
		}
		// Declined or found corrupt: the full decoder reads it again and
		// says what is wrong, if anything is.
	}
	// The buffer goes with the stream (and then to the collector).
	r = io.MultiReader(bytes.NewReader((*buf)[:n]), r)
	if xzPath() != "" {
		return startXZ(r)
	}
	return compress.NewReader(name, r)
}

// xzProcess reads the output of "xz -dc" fed from r.
type xzProcess struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr strings.Builder
	done   bool
}

func startXZ(r io.Reader) (*xzProcess, error) {
	x := &xzProcess{cmd: exec.Command(xzPath(), "-dc", "--single-stream")}
	x.cmd.Stdin = r
	x.cmd.Stderr = &x.stderr
	out, err := x.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start xz: %w", err)
	}
	x.out = out
	if err := x.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start xz: %w", err)
	}
	return x, nil
}

func (x *xzProcess) Read(p []byte) (int, error) {
	if x.done {
		return 0, io.EOF
	}
	n, err := x.out.Read(p)
	if errors.Is(err, io.EOF) && !x.done {
		// The stream ended: a bad or truncated input shows as xz's exit
		// status, not as an early EOF.
		x.done = true
		if werr := x.cmd.Wait(); werr != nil {
			return n, fmt.Errorf("xz: %v: %s", werr, strings.TrimSpace(x.stderr.String()))
		}
	}
	return n, err
}

// Close stops xz if the reader quit early, and reaps it.
func (x *xzProcess) Close() error {
	if x.done {
		return nil
	}
	x.done = true
	x.cmd.Process.Kill()
	x.out.Close()
	x.cmd.Wait()
	return nil
}
