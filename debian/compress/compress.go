// Package compress opens the stream compressions found in Debian archives
// (xz, zstd, gzip, none), chosen by file name suffix as in "data.tar.xz" or
// "Packages.gz".
//
// Limits: bzip2 and lzma (legacy .deb members and old indexes) are not
// supported; they are reported as ErrUnsupported rather than passed through.
package compress

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrUnsupported is returned for a compression suffix this package cannot handle.
var ErrUnsupported = errors.New("compress: unsupported compression")

// zstdMaxWindow bounds the window a zstd frame may ask for. 128 MiB is what
// "zstd --ultra -22" uses; a larger request is hostile or broken input and
// would otherwise make the decoder allocate it.
const zstdMaxWindow = 1 << 27

// bufSize is the read-ahead given to decoders. The xz decoder pulls its input
// one byte at a time through several io.Reader layers, so serving those bytes
// from a buffer instead of the caller's reader (an ar member, a network body)
// is what makes it usable; see BenchmarkXZDecode.
const bufSize = 64 << 10

// unsupported lists suffixes of compressions we know of but do not decode,
// so that "Packages.bz2" is an error instead of being read as plain text.
var unsupported = []string{".bz2", ".lzma", ".lz", ".lz4", ".Z"}

// suffix returns the compression suffix of name that NewReader would act on
// (".xz", ".zst", ".gz") or "" for an uncompressed name.
func suffix(name string) string {
	for _, s := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(name, s) {
			return s
		}
	}
	return ""
}

// NewReader returns a reader that decompresses r according to the suffix of
// name: ".xz", ".zst", ".gz", or none (r is read as is). Other known
// compression suffixes give an error wrapping ErrUnsupported.
//
// Closing the returned reader releases the decoder's resources; it does not
// close r. The reader may read ahead of the compressed stream's end, so r
// should hold nothing after it.
func NewReader(name string, r io.Reader) (io.ReadCloser, error) {
	switch suffix(name) {
	case ".xz":
		xr, err := xz.NewReader(bufio.NewReaderSize(r, bufSize))
		if err != nil {
			return nil, fmt.Errorf("open xz stream %s: %w", name, err)
		}
		return io.NopCloser(xr), nil
	case ".zst":
		// One decoder goroutine at most: bootstrap unpacks many packages in
		// parallel already, and concurrency 1 means no background goroutine
		// that could outlive a reader its caller forgot to close.
		br := bufio.NewReaderSize(r, bufSize)
		// The zstd decoder treats empty input as an empty stream; the zstd
		// tool (like xz and gzip) calls it truncated, and so do we.
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("open zstd stream %s: %w", name, err)
		}
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("open zstd stream %s: %w", name, err)
		}
		return zr.IOReadCloser(), nil
	case ".gz":
		// gzip.NewReader wraps r in its own bufio.Reader when r is not an
		// io.ByteReader, so no extra buffer here.
		gr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("open gzip stream %s: %w", name, err)
		}
		return gr, nil
	}
	for _, s := range unsupported {
		if strings.HasSuffix(name, s) {
			return nil, fmt.Errorf("open %s: %w", name, ErrUnsupported)
		}
	}
	return io.NopCloser(r), nil
}

// NewWriter returns a writer that compresses into w according to the suffix
// of name, as NewReader reads it. Close flushes the compressed stream; it
// does not close w.
func NewWriter(name string, w io.Writer) (io.WriteCloser, error) {
	switch suffix(name) {
	case ".xz":
		xw, err := xz.NewWriter(w)
		if err != nil {
			return nil, fmt.Errorf("create xz stream %s: %w", name, err)
		}
		return xw, nil
	case ".zst":
		// A small window and the fastest level: these streams are caches
		// and fixtures, where memory and time count more than size.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return nil, fmt.Errorf("create zstd stream %s: %w", name, err)
		}
		return zw, nil
	case ".gz":
		return gzip.NewWriter(w), nil
	}
	for _, s := range unsupported {
		if strings.HasSuffix(name, s) {
			return nil, fmt.Errorf("create %s: %w", name, ErrUnsupported)
		}
	}
	return nopWriteCloser{w}, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
