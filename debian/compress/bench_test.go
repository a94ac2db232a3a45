package compress

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ulikunitz/xz"
)

const benchSize = 20 << 20

var (
	benchOnce   sync.Once
	benchXZData []byte
)

// benchInput is ~20 MiB of package-like data compressed by "xz -6" (what
// dpkg-deb uses), or by our writer where xz is not installed.
func benchInput(b *testing.B) []byte {
	benchOnce.Do(func() {
		raw := payload(benchSize, 42)
		if _, err := exec.LookPath("xz"); err == nil {
			cmd := exec.Command("xz", "-c", "-6")
			cmd.Stdin = bytes.NewReader(raw)
			if out, err := cmd.Output(); err == nil {
				benchXZData = out
				return
			}
		}
		benchXZData = compressWith(b, "x.xz", raw)
	})
	return benchXZData
}

// opaqueReader hides io.ByteReader and io.WriterTo, like an ar member or
// an HTTP body does.
type opaqueReader struct{ r io.Reader }

func (o opaqueReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// benchFile writes the benchmark input to a file: reading a .deb from the
// package cache is the case that matters, and there every unbuffered Read is
// a system call.
func benchFile(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "bench.xz")
	if err := os.WriteFile(path, benchInput(b), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchXZ(b *testing.B, open func(io.Reader) (io.Reader, error)) {
	path := benchFile(b)
	b.SetBytes(benchSize)
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r, err := open(f)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
			b.Fatalf("decoded %d bytes, err %v", n, err)
		}
		if c, ok := r.(io.Closer); ok {
			c.Close()
		}
		f.Close()
	}
}

// BenchmarkXZDecode measures NewReader on a .xz file.
func BenchmarkXZDecode(b *testing.B) {
	benchXZ(b, func(r io.Reader) (io.Reader, error) { return NewReader("x.xz", r) })
}

// BenchmarkXZDecodeUnbuffered is the xz decoder without our read-ahead, to
// show what the bufio.Reader in NewReader is worth.
func BenchmarkXZDecodeUnbuffered(b *testing.B) {
	benchXZ(b, func(r io.Reader) (io.Reader, error) { return xz.NewReader(r) })
}

// BenchmarkXZDecodeTool is the reference: "xz -d" on the same input,
// including the cost of starting the process.
func BenchmarkXZDecodeTool(b *testing.B) {
	if _, err := exec.LookPath("xz"); err != nil {
		b.Skipf("xz not installed: %v", err)
	}
	in := benchInput(b)
	b.SetBytes(benchSize)
	for b.Loop() {
		cmd := exec.Command("xz", "-d", "-c")
		cmd.Stdin = bytes.NewReader(in)
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkZstdDecode and BenchmarkGzipDecode give the other formats'
// throughput on the same data for comparison.
func BenchmarkZstdDecode(b *testing.B) { benchDecode(b, ".zst") }
func BenchmarkGzipDecode(b *testing.B) { benchDecode(b, ".gz") }

func benchDecode(b *testing.B, sfx string) {
	in := compressWith(b, "x"+sfx, payload(benchSize, 42))
	b.SetBytes(benchSize)
	for b.Loop() {
		rc, err := NewReader("x"+sfx, opaqueReader{bytes.NewReader(in)})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != benchSize {
			b.Fatalf("decoded %d bytes, err %v", n, err)
		}
		rc.Close()
	}
}
