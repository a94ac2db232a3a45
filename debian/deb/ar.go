package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

const (
	arMagic      = "!<arch>\n"
	arHeaderSize = 60
)

// ArHeader describes one member of an ar archive.
type ArHeader struct {
	Name    string // GNU "name/" terminator removed
	Size    int64
	Mode    int64 // permission bits as written (octal in the archive)
	ModTime time.Time
}

// ArReader reads the members of an ar archive, the container of a .deb, in
// order. Like archive/tar.Reader, Next moves to the next member and Read
// reads its contents.
//
// Limits: only the common format that dpkg-deb writes; GNU long-name tables
// ("//") and BSD "#1/len" names are returned as raw member names.
type ArReader struct {
	r         io.Reader
	started   bool
	name      string // current member, for errors
	remaining int64  // unread bytes of the current member
	pad       int64  // alignment byte after the current member
	err       error  // sticky: once the archive is broken, it stays broken
}

// NewArReader returns a reader of the ar archive in r.
func NewArReader(r io.Reader) *ArReader {
	return &ArReader{r: r}
}

// Next advances to the next member, skipping whatever of the current one is
// unread. It returns io.EOF at the end of the archive.
func (a *ArReader) Next() (*ArHeader, error) {
	if a.err != nil {
		return nil, a.err
	}
	h, err := a.next()
	if err != nil {
		a.err = err
		a.remaining = 0
	}
	return h, err
}

func (a *ArReader) next() (*ArHeader, error) {
	if !a.started {
		a.started = true
		var magic [len(arMagic)]byte
		if _, err := io.ReadFull(a.r, magic[:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read ar magic: %w", err)
		}
		if string(magic[:]) != arMagic {
			return nil, fmt.Errorf("read ar magic %q: %w", magic[:], ErrFormat)
		}
	}
	if _, err := io.CopyN(io.Discard, a.r, a.remaining); err != nil {
		return nil, fmt.Errorf("skip ar member %q: %w", a.name, unexpected(err))
	}
	a.remaining = 0
	if a.pad > 0 {
		a.pad = 0
		var b [1]byte
		if _, err := io.ReadFull(a.r, b[:]); err == io.EOF {
			// Some writers drop the padding of the last member; the
			// archive is over either way.
			return nil, io.EOF
		} else if err != nil {
			return nil, fmt.Errorf("read padding after ar member %q: %w", a.name, err)
		}
		if b[0] != '\n' {
			return nil, fmt.Errorf("read padding after ar member %q: byte %#x instead of newline: %w", a.name, b[0], ErrFormat)
		}
	}

	var raw [arHeaderSize]byte
	_, err := io.ReadFull(a.r, raw[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("read ar header after member %q: %w", a.name, unexpected(err))
	}
	h, err := parseArHeader(raw[:])
	if err != nil {
		return nil, err
	}
	a.name = h.Name
	a.remaining = h.Size
	a.pad = h.Size % 2
	return h, nil
}

// parseArHeader decodes the fixed-width header: name 16, mtime 12, uid 6,
// gid 6, mode 8, size 10, then the terminator "`\n".
func parseArHeader(raw []byte) (*ArHeader, error) {
	name := string(bytes.TrimRight(raw[0:16], " "))
	if len(name) > 1 && name[len(name)-1] == '/' {
		name = name[:len(name)-1]
	}
	if string(raw[58:60]) != "`\n" {
		return nil, fmt.Errorf("read ar header of member %q: bad terminator %q: %w", name, raw[58:60], ErrFormat)
	}
	size, err := arNumber(raw[48:58], 10)
	if err != nil {
		return nil, fmt.Errorf("read ar header of member %q: size %q: %w", name, raw[48:58], err)
	}
	mtime, err := arNumber(raw[16:28], 10)
	if err != nil {
		return nil, fmt.Errorf("read ar header of member %q: mtime %q: %w", name, raw[16:28], err)
	}
	mode, err := arNumber(raw[40:48], 8)
	if err != nil {
		return nil, fmt.Errorf("read ar header of member %q: mode %q: %w", name, raw[40:48], err)
	}
	return &ArHeader{Name: name, Size: size, Mode: mode, ModTime: time.Unix(mtime, 0)}, nil
}

// arNumber parses a space-padded, unsigned number field; an all-blank field
// is 0, which is what deterministic writers put in fields they do not fill.
func arNumber(field []byte, base int) (int64, error) {
	s := string(bytes.TrimRight(field, " "))
	if s == "" {
		return 0, nil
	}
	// ParseInt alone would accept a sign.
	if s[0] < '0' || s[0] > '9' {
		return 0, ErrFormat
	}
	v, err := strconv.ParseInt(s, base, 64)
	if err != nil {
		return 0, ErrFormat
	}
	return v, nil
}

// unexpected turns an early io.EOF into io.ErrUnexpectedEOF: inside a
// member or header, the end of input means the archive was cut short.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Read reads from the current member, returning io.EOF at its end.
func (a *ArReader) Read(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	if a.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.remaining {
		p = p[:a.remaining]
	}
	n, err := a.r.Read(p)
	a.remaining -= int64(n)
	if err == io.EOF {
		if a.remaining > 0 {
			a.err = fmt.Errorf("read ar member %q: %w", a.name, io.ErrUnexpectedEOF)
			return n, a.err
		}
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("read ar member %q: %w", a.name, err)
	}
	if a.remaining == 0 && n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
