package compress

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"testing/iotest"
)

// payload returns n bytes that compress like real package contents: text
// with repetition and some noise, deterministic for a given seed.
func payload(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := strings.Fields("usr lib share doc bin x86_64-linux-gnu libc.so.6 copyright changelog.Debian.gz " +
		"Package Version Depends Architecture amd64 all the of and to in is for with GNU General Public License")
	var b bytes.Buffer
	b.Grow(n)
	for b.Len() < n {
		if rng.IntN(8) == 0 {
			var noise [16]byte
			for i := range noise {
				noise[i] = byte(rng.Uint32())
			}
			b.Write(noise[:])
			continue
		}
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(" \n/"[rng.IntN(3)])
	}
	return b.Bytes()[:n]
}

var suffixes = []string{".xz", ".zst", ".gz", ""}

func compressWith(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(name, &buf)
	if err != nil {
		t.Fatalf("NewWriter(%q): %v", name, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer %s: %v", name, err)
	}
	return buf.Bytes()
}

func decompress(name string, r io.Reader) ([]byte, error) {
	rc, err := NewReader(name, r)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return data, err
}

func TestRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 4096, 1 << 20} {
		want := payload(size, uint64(size))
		for _, sfx := range suffixes {
			name := "data.tar" + sfx
			comp := compressWith(t, name, want)
			got, err := decompress(name, bytes.NewReader(comp))
			if err != nil {
				t.Fatalf("%s, %d bytes: read: %v", name, size, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, %d bytes: round trip gave %d bytes, want %d (content differs)", name, size, len(got), len(want))
			}
			if sfx != "" && size >= 4096 && len(comp) >= size {
				t.Errorf("%s: %d bytes compressed to %d; writer does not compress", name, size, len(comp))
			}
		}
	}
}

// TestOneByteReader makes sure the decoders cope with a source that returns
// short reads, as an ar member or a network body may.
func TestOneByteReader(t *testing.T) {
	want := payload(64<<10, 7)
	for _, sfx := range suffixes {
		name := "x" + sfx
		got, err := decompress(name, iotest.OneByteReader(bytes.NewReader(compressWith(t, name, want))))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s through OneByteReader: got %d bytes, err %v; want %d bytes", name, len(got), err, len(want))
		}
	}
}

// TestReferenceTools decodes what xz, zstd and gzip themselves write, at the
// options dpkg-deb and the archive use, including multi-threaded xz (several
// blocks) and concatenated streams.
func TestReferenceTools(t *testing.T) {
	want := payload(1<<20, 3)
	cases := []struct {
		name string
		argv []string
	}{
		{".xz", []string{"xz", "-c", "-6"}},
		{".xz", []string{"xz", "-c", "-T2", "--block-size=262144"}},
		{".xz", []string{"xz", "-c", "-0", "--check=sha256"}},
		{".xz", []string{"xz", "-c", "--check=none"}},
		{".zst", []string{"zstd", "-c", "-q", "-12"}},
		{".zst", []string{"zstd", "-c", "-q", "--long=27"}},
		{".gz", []string{"gzip", "-c", "-9n"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.argv, " "), func(t *testing.T) {
			if _, err := exec.LookPath(c.argv[0]); err != nil {
				t.Skipf("%s not installed: %v", c.argv[0], err)
			}
			cmd := exec.Command(c.argv[0], c.argv[1:]...)
			cmd.Stdin = bytes.NewReader(want)
			comp, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v", c.argv, err)
			}
			// Two streams back to back: xz, zstd and gzip all define this as
			// the concatenation of the contents.
			comp2 := append(append([]byte{}, comp...), comp...)
			got, err := decompress("f"+c.name, bytes.NewReader(comp2))
			if err != nil {
				t.Fatalf("read output of %v: %v", c.argv, err)
			}
			want2 := append(append([]byte{}, want...), want...)
			if !bytes.Equal(got, want2) {
				t.Fatalf("output of %v decoded to %d bytes (sha256 %x), want %d bytes (sha256 %x)",
					c.argv, len(got), sha256.Sum256(got), len(want2), sha256.Sum256(want2))
			}
		})
	}
	// And the other way round: what our writer produces, the tools accept.
	for _, c := range []struct{ sfx, tool string }{{".xz", "xz"}, {".zst", "zstd"}, {".gz", "gzip"}} {
		if _, err := exec.LookPath(c.tool); err != nil {
			t.Logf("%s not installed, skipping writer check: %v", c.tool, err)
			continue
		}
		cmd := exec.Command(c.tool, "-d", "-c")
		cmd.Stdin = bytes.NewReader(compressWith(t, "f"+c.sfx, want))
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -d on our %s output: %v", c.tool, c.sfx, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s -d on our %s output: %d bytes, want %d", c.tool, c.sfx, len(got), len(want))
		}
	}
}

func TestUnsupported(t *testing.T) {
	for _, name := range []string{"Packages.bz2", "data.tar.lzma", "x.lz4", "x.Z"} {
		if _, err := NewReader(name, strings.NewReader("x")); !errors.Is(err, ErrUnsupported) {
			t.Errorf("NewReader(%q): err %v, want ErrUnsupported", name, err)
		}
		if _, err := NewWriter(name, io.Discard); !errors.Is(err, ErrUnsupported) {
			t.Errorf("NewWriter(%q): err %v, want ErrUnsupported", name, err)
		}
	}
	if got := ErrUnsupported.Error(); got != "compress: unsupported compression" {
		t.Errorf("ErrUnsupported text %q", got)
	}
}

// TestCorrupt checks that damaged or truncated input is an error and never
// a short read that looks like success.
func TestCorrupt(t *testing.T) {
	want := payload(256<<10, 11)
	for _, sfx := range []string{".xz", ".zst", ".gz"} {
		name := "f" + sfx
		comp := compressWith(t, name, want)
		if _, err := decompress(name, strings.NewReader("this is not compressed data at all")); err == nil {
			t.Errorf("%s: garbage input decoded without error", name)
		}
		if _, err := decompress(name, bytes.NewReader(nil)); err == nil {
			t.Errorf("%s: empty input decoded without error", name)
		}
		for _, cut := range []int{len(comp) / 2, len(comp) - 1} {
			if got, err := decompress(name, bytes.NewReader(comp[:cut])); err == nil {
				t.Errorf("%s truncated to %d of %d bytes: no error (got %d bytes)", name, cut, len(comp), len(got))
			}
		}
		flipped := bytes.Clone(comp)
		flipped[len(flipped)/2] ^= 0x55
		if got, err := decompress(name, bytes.NewReader(flipped)); err == nil && bytes.Equal(got, want) {
			t.Errorf("%s with a flipped byte decoded to the original", name)
		} else if err == nil {
			t.Errorf("%s with a flipped byte: no error, %d bytes of wrong output", name, len(got))
		}
	}
}

func FuzzReader(f *testing.F) {
	for _, sfx := range suffixes {
		f.Add(sfx, compressWith(f, "f"+sfx, payload(2000, 1)))
	}
	f.Fuzz(func(t *testing.T, sfx string, data []byte) {
		rc, err := NewReader("f"+sfx, bytes.NewReader(data))
		if err != nil {
			return
		}
		defer rc.Close()
		// Bound the output: a tiny input may legitimately expand a lot.
		_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
	})
}
