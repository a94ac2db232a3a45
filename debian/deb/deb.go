// Package deb reads Debian binary packages (.deb): the ar container, the
// control.tar member (control paragraph, maintainer scripts, md5sums,
// conffiles) and the data.tar member, compressed with xz, zstd, gzip or not
// at all.
//
// Limits: bzip2 and lzma members (accepted by dpkg for old packages) are
// reported as unsupported; control.tar is read into memory and refused
// above 64 MiB, compressed or not.
package deb

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"jailmgr/debian/compress"
	"jailmgr/debian/control"
)

// ErrFormat is wrapped by errors about a malformed package; the error text
// names the ar member at fault.
var ErrFormat = errors.New("deb: invalid format")

const (
	// maxControlSize bounds control.tar, compressed and decompressed: real
	// ones are kilobytes, and a hostile one must not make us allocate.
	maxControlSize = 64 << 20
	// maxDebianBinary bounds debian-binary, whose content is "2.0\n".
	maxDebianBinary = 1 << 10
)

// formatVersion is what debian-binary must start with: major version 2.
var formatVersion = regexp.MustCompile(`^2\.[0-9]+$`)

// ControlFile is one file of control.tar, such as "postinst", "md5sums" or
// "conffiles", with its name relative to the tarball's root.
type ControlFile struct {
	Name    string
	Mode    fs.FileMode
	ModTime time.Time // from the tarball: dpkg keeps it on the files it registers
	Data    []byte
}

// Control is the content of a package's control.tar.
type Control struct {
	Paragraph *control.Paragraph // the "control" file
	Files     []ControlFile      // every regular file, "control" included, in tarball order
}

// File returns the control file called name ("postinst").
func (c *Control) File(name string) (ControlFile, bool) {
	for _, f := range c.Files {
		if f.Name == name {
			return f, true
		}
	}
	return ControlFile{}, false
}

// Reader reads a .deb from start to end in one pass: Control, then Data.
type Reader struct {
	// Decompress, when set, opens the control.tar and data.tar members
	// instead of compress.NewReader (a caller may prefer a decoder it has:
	// the pure-Go xz decoder allocates the whole dictionary a stream
	// declares, up to 64 MiB, even for a control.tar of a few KiB).
	Decompress func(name string, r io.Reader) (io.ReadCloser, error)

	ar         *ArReader
	control    *Control
	err        error     // sticky error from Control
	data       io.Closer // decompressor of data.tar
	dataCalled bool      // Data was called
}

// NewReader returns a reader of the .deb in r.
func NewReader(r io.Reader) *Reader {
	return &Reader{ar: NewArReader(r)}
}

// Control reads the debian-binary member, which must say format "2.x", and
// the control.tar member. Later calls return the same result.
func (d *Reader) Control() (*Control, error) {
	if d.control == nil && d.err == nil {
		d.control, d.err = d.readControl()
	}
	return d.control, d.err
}

func (d *Reader) readControl() (*Control, error) {
	h, err := d.ar.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("read debian-binary: empty archive: %w", ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	if h.Name != "debian-binary" {
		return nil, fmt.Errorf("read debian-binary: first member is %q: %w", h.Name, ErrFormat)
	}
	if h.Size > maxDebianBinary {
		return nil, fmt.Errorf("read debian-binary: size %d: %w", h.Size, ErrFormat)
	}
	b, err := io.ReadAll(d.ar)
	if err != nil {
		return nil, fmt.Errorf("read debian-binary: %w", err)
	}
	// dpkg reads the first line only; what follows is room for the future.
	first, _, _ := strings.Cut(string(b), "\n")
	if !formatVersion.MatchString(first) {
		return nil, fmt.Errorf("read debian-binary: format %q is not 2.x: %w", first, ErrFormat)
	}

	h, err = d.nextMember("control.tar")
	if err != nil {
		return nil, err
	}
	if h.Size > maxControlSize {
		return nil, fmt.Errorf("read %s: size %d over the %d limit: %w", h.Name, h.Size, maxControlSize, ErrFormat)
	}
	open := compress.NewReader
	if d.Decompress != nil {
		open = d.Decompress
	}
	c, err := readControlTar(h.Name, d.ar, open)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", h.Name, err)
	}
	return c, nil
}

// nextMember moves to the member called base plus a compression suffix,
// skipping members whose names start with "_": dpkg reserves those for
// additions that older readers ignore.
func (d *Reader) nextMember(base string) (*ArHeader, error) {
	for {
		h, err := d.ar.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("read %s: member missing: %w", base, ErrFormat)
		}
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(h.Name, "_") {
			continue
		}
		switch strings.TrimPrefix(h.Name, base) {
		case "", ".xz", ".zst", ".gz":
			if strings.HasPrefix(h.Name, base) {
				return h, nil
			}
		case ".bz2", ".lzma":
			return nil, fmt.Errorf("read %s: %w", h.Name, compress.ErrUnsupported)
		}
		return nil, fmt.Errorf("read %s: unexpected member %q: %w", base, h.Name, ErrFormat)
	}
}

func readControlTar(member string, r io.Reader, open func(string, io.Reader) (io.ReadCloser, error)) (c *Control, err error) {
	zr, err := open(member, r)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := zr.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	tr := tar.NewReader(&limitReader{r: zr, n: maxControlSize})
	c = &Control{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		// Only plain files carry control information; dpkg-deb also lets
		// maintainer scripts be symlinks, which we cannot run from here.
		if h.Typeflag != tar.TypeReg || name == "" {
			continue
		}
		// The limitReader bounds what ReadAll can grow to, whatever
		// the header's size says.
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		c.Files = append(c.Files, ControlFile{Name: name, Mode: h.FileInfo().Mode(), ModTime: h.ModTime, Data: data})
	}
	f, ok := c.File("control")
	if !ok {
		return nil, fmt.Errorf("no control file: %w", ErrFormat)
	}
	c.Paragraph, err = control.ParseParagraph(f.Data, "control")
	if err != nil {
		return nil, err
	}
	return c, nil
}

// limitReader is io.LimitReader that fails instead of ending silently, so
// an oversized control.tar is an error and not a truncated tarball.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("decompressed size over the %d limit: %w", maxControlSize, ErrFormat)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// Data returns a reader of the data.tar member, the files the package
// installs. It reads Control first if that has not been done. The tar
// reader is valid until the next call on d; Close releases its decoder.
func (d *Reader) Data() (*tar.Reader, error) {
	if d.dataCalled {
		return nil, errors.New("read data.tar: Data called twice")
	}
	d.dataCalled = true
	if _, err := d.Control(); err != nil {
		return nil, err
	}
	h, err := d.nextMember("data.tar")
	if err != nil {
		return nil, err
	}
	open := compress.NewReader
	if d.Decompress != nil {
		open = d.Decompress
	}
	zr, err := open(h.Name, d.ar)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", h.Name, err)
	}
	d.data = zr
	return tar.NewReader(memberReader{name: h.Name, r: zr}), nil
}

// memberReader names the member in errors from the decompressor, which
// would otherwise say "unexpected EOF" and nothing else.
type memberReader struct {
	name string
	r    io.Reader
}

func (m memberReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s: %w", m.name, err)
	}
	return n, err
}

// Close releases the data.tar decompressor. It does not close the reader
// given to NewReader.
func (d *Reader) Close() error {
	if d.data == nil {
		return nil
	}
	err := d.data.Close()
	d.data = nil
	return err
}
