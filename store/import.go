package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"jailmgr/store/tree"
)

var (
	// ErrWhiteout is returned for an OCI whiteout entry (.wh.*): import
	// takes whole trees, not layers to apply over others.
	ErrWhiteout = errors.New("store: OCI whiteout entries are not supported")
	// ErrDigest is returned when a blob's digest or size is not what the
	// descriptor that names it says.
	ErrDigest = errors.New("store: digest mismatch")
	// ErrCarried is returned when a tar export's entries are not what the
	// index it carries says.
	ErrCarried = errors.New("store: archive differs from the index it carries")
)

const whiteoutPrefix = ".wh."

// ImportOptions change what Import commits.
type ImportOptions struct {
	// Name is the image to add a version to; by default, the name in the
	// manifest the archive carries.
	Name string
	// Progress, when set, is called once with the bytes to read (the
	// tar, or the layers) and returns the bar that follows them.
	Progress func(total int64) Bar
}

// archive is an export opened for import: what it says it holds, and how
// to unpack it.
type archive interface {
	// manifest is the carried jailmgr manifest, or, when carried is
	// false, one made from what the archive says (an OCI image of another
	// tool, a plain tar): never nil.
	manifest() (m *Manifest, carried bool)
	// size is how many bytes unpack reads.
	size() int64
	unpack(u *unpacker) error
}

// Import reads a file written by Export, in either format, told apart by
// its content, and commits it as the next version of an image. Every
// entry is written through store/tree, so names and links that would
// leave the root are refused; OCI digests and sizes (manifest, config,
// layer and its diff_id) are checked, and so is every entry of a tar
// export against the index it carries. On any error the staging area is
// removed and nothing is committed.
//
// A zstd tar that carries nothing (`tar --zstd -cf` of a root) and an
// OCI layout of another tool import too; they need a Name, and get a
// manifest with only their architecture (OCI), creation time and size.
func (s *Store) Import(ctx context.Context, file string, o ImportOptions) (img *Image, err error) {
	if o.Name != "" && !validName(o.Name) {
		return nil, fmt.Errorf("%w %q: a name is letters, digits, '.', '-' and '_'", ErrBadRef, o.Name)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("import %s: %w: not a regular file", file, ErrFormat)
	}
	a, err := openArchive(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	m, carried := a.manifest()
	name := o.Name
	if name == "" {
		name = m.Name
	}
	if name == "" {
		return nil, fmt.Errorf("import %s: %w: the archive carries no image name; give one with --name", file, ErrBadRef)
	}
	if !validName(name) {
		return nil, fmt.Errorf("import %s: %w %q in the archive; give another with --name", file, ErrBadRef, name)
	}
	var bar Bar
	if o.Progress != nil {
		bar = o.Progress(a.size())
		defer bar.Finish()
	}
	stg, err := s.NewStaging()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			stg.Abort()
		}
	}()
	root, err := tree.OpenRoot(stg.Root())
	if err != nil {
		return nil, err
	}
	defer root.Close()
	u := &unpacker{ctx: ctx, root: root, bar: bar, dirs: map[string]time.Time{}}
	if err := a.unpack(u); err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	if err := u.finish(); err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	if !carried {
		// What a bootstrap would have recorded: when, and how big.
		if m.Created.IsZero() {
			m.Created = time.Now().UTC()
		}
		if m.Size, err = DiskUsage(stg.Root()); err != nil {
			return nil, err
		}
	}
	if u.check {
		// Every entry was written and checked against the carried index,
		// content hashes included, and finish found none missing.
		stg.index = u.carried
	}
	img, err = stg.Commit(name, m)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	return img, nil
}

// openArchive tells the formats apart by their first bytes: a zstd frame
// (or a skippable one) is a tar export, a tar header an OCI layout.
func openArchive(f *os.File, size int64) (archive, error) {
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	head = head[:n]
	if n >= 4 {
		magic := binary.LittleEndian.Uint32(head)
		if magic == 0xFD2FB528 || magic&0xFFFFFFF0 == 0x184D2A50 {
			return openTarZst(f, size)
		}
	}
	if n == 512 && isTarHeader(head) {
		return openOCI(f, size)
	}
	return nil, fmt.Errorf("%w: neither a zstd tar nor a tar of an OCI image layout", ErrFormat)
}

// isTarHeader checks a header block's checksum: the unsigned sum of its
// bytes, the checksum field counted as spaces.
func isTarHeader(b []byte) bool {
	field := strings.TrimRight(strings.TrimSpace(string(bytes.TrimRight(b[148:156], "\x00 "))), "\x00")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var got int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		got += int64(c)
	}
	return got == want
}

// tarZst is a tar export: the zstd tar, then maybe the carried data.
type tarZst struct {
	f       *os.File
	tarSize int64 // bytes before the carried data
	m       *Manifest
	index   []Entry // nil when nothing is carried
}

func openTarZst(f *os.File, size int64) (*tarZst, error) {
	a := &tarZst{f: f, tarSize: size, m: &Manifest{}}
	if size < 24 {
		return a, nil
	}
	var foot [16]byte
	if _, err := f.ReadAt(foot[:], size-16); err != nil {
		return nil, err
	}
	if string(foot[8:]) != carryMagic {
		return a, nil // a plain zstd tar
	}
	n := binary.LittleEndian.Uint64(foot[:8])
	if n > uint64(size-24) {
		return nil, fmt.Errorf("%w: the carried data's footer is damaged", ErrFormat)
	}
	start := size - 24 - int64(n)
	var fh [8]byte
	if _, err := f.ReadAt(fh[:], start); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(fh[:4]) != skippableMagic || int64(binary.LittleEndian.Uint32(fh[4:])) != int64(n)+16 {
		return nil, fmt.Errorf("%w: the carried data's frame is damaged", ErrFormat)
	}
	a.tarSize = start
	zr, err := zstd.NewReader(io.NewSectionReader(f, start+8, int64(n)), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(zr, 64<<10))
	var hdr carriedHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("%w: read carried data: %w", ErrFormat, err)
	}
	if hdr.Format != carriedFormat || hdr.Version != 1 {
		return nil, fmt.Errorf("%w: carried data %q version %d (this jailmgr reads %s version 1)", ErrFormat, hdr.Format, hdr.Version, carriedFormat)
	}
	if err := json.Unmarshal(hdr.Manifest, a.m); err != nil {
		return nil, fmt.Errorf("%w: read carried manifest: %w", ErrFormat, err)
	}
	a.index = []Entry{}
	for {
		var e Entry
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%w: read carried index: %w", ErrFormat, err)
		}
		if clean, err := tree.CleanName(e.Path); err != nil || clean != e.Path || clean == "" {
			return nil, fmt.Errorf("%w: carried index: bad path %q", ErrFormat, e.Path)
		}
		if k := len(a.index); k > 0 && !PathLess(a.index[k-1].Path, e.Path) {
			return nil, fmt.Errorf("%w: carried index: %q is out of order", ErrFormat, e.Path)
		}
		a.index = append(a.index, e)
	}
	return a, nil
}

func (a *tarZst) manifest() (*Manifest, bool) { return a.m, a.index != nil }
func (a *tarZst) size() int64                 { return a.tarSize }

func (a *tarZst) unpack(u *unpacker) error {
	zr, err := zstd.NewReader(u.counted(io.NewSectionReader(a.f, 0, a.tarSize)))
	if err != nil {
		return err
	}
	defer zr.Close()
	u.carried, u.check = a.index, a.index != nil
	if err := u.unpackTar(zr); err != nil {
		return err
	}
	// Read to the end: the zstd frame's checksum is checked there.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	return nil
}

// unpacker writes tar streams into a staging root.
type unpacker struct {
	ctx   context.Context
	root  *tree.Root
	bar   Bar
	layer bool // an OCI layer: whiteouts are refused

	check   bool // compare each entry with carried
	carried []Entry
	next    int
	written map[string]Entry // non-directories written, for hard links

	dirs map[string]time.Time // set once everything below them is written
	n    int
}

func (u *unpacker) counted(r io.Reader) io.Reader {
	if u.bar == nil {
		return r
	}
	return &barReader{r, u.bar}
}

func (u *unpacker) unpackTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
}

func (u *unpacker) entry(hdr *tar.Header, body io.Reader) error {
	if u.n++; u.n%256 == 0 {
		if err := u.ctx.Err(); err != nil {
			return err
		}
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := tree.CleanName(hdr.Name)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if name == "" {
		return nil // the root: the staging area's own
	}
	if u.layer && strings.HasPrefix(path.Base(name), whiteoutPrefix) {
		return fmt.Errorf("entry %q: %w (import takes a whole tree)", hdr.Name, ErrWhiteout)
	}
	e, err := entryFromHeader(name, hdr)
	if err != nil {
		return err
	}
	var o tree.Options
	var h hash.Hash
	if u.check && (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA) {
		h = sha256.New()
		o.Hash = h
	}
	if hdr.Typeflag == tar.TypeLink && u.check {
		target, err := tree.CleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("entry %q: hard link: %w", hdr.Name, err)
		}
		t, ok := u.written[target]
		if !ok {
			return fmt.Errorf("entry %q: %w: hard link to %q, which comes before it nowhere", hdr.Name, ErrCarried, hdr.Linkname)
		}
		t.Path = name
		e = t
	}
	if err := u.root.WriteEntry(hdr, body, o); err != nil {
		return err
	}
	if h != nil {
		e.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	if hdr.Typeflag != tar.TypeLink && e.Type != TypeSymlink {
		keys := make([]string, 0, len(e.Xattrs))
		for k := range e.Xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := u.root.SetXattr(name, k, []byte(e.Xattrs[k])); err != nil {
				return err
			}
		}
	}
	if e.Type == TypeDir {
		u.dirs[name] = hdr.ModTime
	}
	if !u.check {
		return nil
	}
	if u.next >= len(u.carried) {
		return fmt.Errorf("entry %q: %w: it is not in the index", hdr.Name, ErrCarried)
	}
	want := &u.carried[u.next]
	u.next++
	if !e.Same(want) || e.MTime != want.MTime {
		if e.Path != want.Path {
			return fmt.Errorf("entry %q: %w: %s comes there", hdr.Name, ErrCarried, want.Path)
		}
		return fmt.Errorf("entry %q: %w: the archive has %s, the index %s", hdr.Name, ErrCarried, describe(&e), describe(want))
	}
	if e.Type != TypeDir {
		if u.written == nil {
			u.written = map[string]Entry{}
		}
		u.written[name] = e
	}
	return nil
}

// finish checks that nothing carried is missing and sets the folders'
// times, which the entries written below them moved.
func (u *unpacker) finish() error {
	if u.check && u.next < len(u.carried) {
		return fmt.Errorf("%w: the archive ends before %s", ErrCarried, u.carried[u.next].Path)
	}
	for name, t := range u.dirs {
		if err := u.root.Chtimes(name, t); err != nil {
			return err
		}
	}
	return nil
}

// entryFromHeader is the index entry a tar header describes (without the
// hash of its content). Of the extended attributes, it keeps those an
// index records.
func entryFromHeader(name string, hdr *tar.Header) (Entry, error) {
	e := Entry{Path: name, Mode: uint32(hdr.Mode) & 0o7777, UID: hdr.Uid, GID: hdr.Gid, MTime: hdr.ModTime.UnixNano()}
	switch hdr.Typeflag {
	case tar.TypeDir:
		e.Type = TypeDir
	case tar.TypeReg, tar.TypeRegA:
		e.Type, e.Size = TypeFile, hdr.Size
	case tar.TypeLink:
		e.Type = TypeFile
	case tar.TypeSymlink:
		e.Type, e.Link = TypeSymlink, hdr.Linkname
	case tar.TypeChar, tar.TypeBlock:
		e.Type = TypeChar
		if hdr.Typeflag == tar.TypeBlock {
			e.Type = TypeBlock
		}
		e.Major, e.Minor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		e.Type = TypeFifo
	default:
		return Entry{}, fmt.Errorf("entry %q: %w %q", hdr.Name, tree.ErrUnsupported, hdr.Typeflag)
	}
	if e.Type == TypeSymlink {
		return e, nil
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, paxXattr); ok && imageXattr(x) {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[x] = v
		}
	}
	return e, nil
}

// imageXattr reports whether an image carries an extended attribute: file
// capabilities and other security.* and user.* ones do; trusted.* ones
// (overlayfs' among them) and ACLs belong to the host.
func imageXattr(name string) bool {
	return strings.HasPrefix(name, "security.") || strings.HasPrefix(name, "user.")
}

type barReader struct {
	r io.Reader
	b Bar
}

func (r *barReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.b.Add(int64(n))
	return n, err
}
