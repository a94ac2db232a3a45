package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// IndexFile is the name, beside rootfs/, of a version's file index.
const IndexFile = "files.zst"

// Entry types of an index.
const (
	TypeDir     = "dir"
	TypeFile    = "file"
	TypeSymlink = "symlink"
	TypeChar    = "char"
	TypeBlock   = "block"
	TypeFifo    = "fifo"
	TypeSocket  = "socket"
)

// Entry is one path of an image tree as its index records it: what verify
// compares, diff reports, export writes and import must reproduce.
type Entry struct {
	Path   string            `json:"path"` // relative to the root, "/"-separated, never empty
	Type   string            `json:"type"`
	Mode   uint32            `json:"mode"` // permission bits with setuid, setgid and sticky
	UID    int               `json:"uid"`
	GID    int               `json:"gid"`
	Size   int64             `json:"size,omitempty"`   // regular files
	SHA256 string            `json:"sha256,omitempty"` // regular files
	Link   string            `json:"link,omitempty"`   // symlink target
	Major  uint32            `json:"major,omitempty"`  // devices
	Minor  uint32            `json:"minor,omitempty"`
	MTime  int64             `json:"mtime"` // nanoseconds since the epoch
	Xattrs map[string]string `json:"xattrs,omitempty"`
}

// Same reports whether two entries describe the same content and metadata.
func (e *Entry) Same(o *Entry) bool {
	if e.Path != o.Path || e.Type != o.Type || e.Mode != o.Mode || e.UID != o.UID || e.GID != o.GID ||
		e.Size != o.Size || e.SHA256 != o.SHA256 || e.Link != o.Link || e.Major != o.Major || e.Minor != o.Minor ||
		len(e.Xattrs) != len(o.Xattrs) {
		return false
	}
	// Directory times change with every entry written below them; they
	// are not content.
	if e.Type != TypeDir && e.MTime != o.MTime {
		return false
	}
	for k, v := range e.Xattrs {
		if o.Xattrs[k] != v {
			return false
		}
	}
	return true
}

// BuildIndex walks root and records every path below it, in lexical order,
// hashing regular files on several cores.
func BuildIndex(root string) ([]Entry, error) {
	var entries []Entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		e, err := statEntry(p, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", root, err)
	}
	if err := hashFiles(root, entries); err != nil {
		return nil, err
	}
	return entries, nil
}

func statEntry(p, rel string) (Entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return Entry{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return entryOf(p, rel, &st)
}

// entryOf describes the path p, whose lstat is st, as an index entry
// (without its hash).
func entryOf(p, rel string, st *unix.Stat_t) (Entry, error) {
	e := entryFromStat(rel, st)
	switch e.Type {
	case TypeSymlink:
		link, err := os.Readlink(p)
		if err != nil {
			return Entry{}, err
		}
		e.Link = link
	default:
		x, err := readXattrs(p)
		if err != nil {
			return Entry{}, err
		}
		e.Xattrs = x
	}
	return e, nil
}

// entryFromStat is what a stat says of the entry at rel: all but its link
// target, xattrs and hash.
func entryFromStat(rel string, st *unix.Stat_t) Entry {
	e := Entry{Path: rel, Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid), MTime: st.Mtim.Nano()}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFREG:
		e.Type, e.Size = TypeFile, st.Size
	case unix.S_IFLNK:
		e.Type = TypeSymlink
	case unix.S_IFCHR:
		e.Type, e.Major, e.Minor = TypeChar, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFBLK:
		e.Type, e.Major, e.Minor = TypeBlock, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		e.Type = TypeFifo
	case unix.S_IFSOCK:
		e.Type = TypeSocket
	}
	return e
}

// readXattrs returns a path's extended attributes that an image carries
// (file capabilities and other security.* and user.* ones; overlayfs' and
// trusted.* ones belong to the host).
func readXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out map[string]string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if !imageXattr(name) {
			continue
		}
		vsz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		val := make([]byte, vsz)
		if vsz, err = unix.Lgetxattr(p, name, val); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(val[:vsz])
	}
	return out, nil
}

// hashFiles fills in the SHA256 of every regular file, a few at a time.
func hashFiles(root string, entries []Entry) error {
	idx := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < max(2, runtime.NumCPU()); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range idx {
				sum, err := HashFile(filepath.Join(root, entries[i].Path), buf)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				entries[i].SHA256 = sum
			}
		}()
	}
	for i := range entries {
		if entries[i].Type == TypeFile {
			idx <- i
		}
	}
	close(idx)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("index %s: %w", root, err)
	default:
		return nil
	}
}

// HashFile returns the hex SHA256 of a file's content, without following a
// symlink at its name.
func HashFile(p string, buf []byte) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	// Not f itself: *os.File.WriteTo would ignore buf and allocate.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteIndex writes entries as zstd-compressed JSON lines.
func WriteIndex(path string, entries []Entry) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	// The index is a few MiB of JSON at most: a 1 MiB window compresses
	// it as well as the default 8 MiB one, whose tables would make the
	// commit the peak of a bootstrap's memory.
	zw, err := zstd.NewWriter(f, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
	if err != nil {
		f.Close()
		return err
	}
	bw := bufio.NewWriterSize(zw, 64<<10)
	enc := json.NewEncoder(bw)
	for i := range entries {
		if err := enc.Encode(&entries[i]); err != nil {
			f.Close()
			return fmt.Errorf("write index: %w", err)
		}
	}
	err = bw.Flush()
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write index %s: %w", path, err)
	}
	return nil
}

// ReadIndex reads an index written by WriteIndex.
func ReadIndex(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(zr, 64<<10))
	var out []Entry
	for {
		var e Entry
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read index %s: %w", path, err)
		}
		out = append(out, e)
	}
	if !sort.SliceIsSorted(out, func(i, j int) bool { return PathLess(out[i].Path, out[j].Path) }) {
		return nil, fmt.Errorf("read index %s: paths are out of order (the file is damaged)", path)
	}
	return out, nil
}

// PathLess orders paths as a walk of the tree meets them: component by
// component, so that "a/b" comes before "a.txt".
func PathLess(a, b string) bool {
	for {
		ca, ra, moreA := strings.Cut(a, "/")
		cb, rb, moreB := strings.Cut(b, "/")
		if ca != cb {
			return ca < cb
		}
		if !moreA || !moreB {
			return !moreA && moreB
		}
		a, b = ra, rb
	}
}

// Index returns the image's file index. A version committed before indexes
// existed has it computed from its tree.
func (i *Image) Index() ([]Entry, error) {
	entries, err := ReadIndex(filepath.Join(i.Dir, IndexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return BuildIndex(i.RootFS())
	}
	return entries, err
}

// shareWith replaces every regular file of the staged root that is the same
// (content and metadata) as the file at its path in prev with a hard link
// to prev's file, so that versions share what they do not change. It
// returns how many bytes the links saved. A file of prev that cannot be
// linked (prev removed meanwhile, another filesystem) is simply not shared.
func shareWith(root string, entries []Entry, prev *Image) (saved int64) {
	old, err := prev.Index()
	if err != nil {
		return 0
	}
	byPath := make(map[string]*Entry, len(old))
	for i := range old {
		byPath[old[i].Path] = &old[i]
	}
	prevRoot := prev.RootFS()
	buf := make([]byte, 256<<10)
	touched := map[string]bool{}
	var rootTime time.Time
	if fi, err := os.Lstat(root); err == nil {
		rootTime = fi.ModTime()
	}
	for i := range entries {
		e := &entries[i]
		o := byPath[e.Path]
		if e.Type != TypeFile || o == nil || !e.Same(o) {
			continue
		}
		dst := filepath.Join(root, e.Path)
		var ds, ps unix.Stat_t
		if unix.Lstat(dst, &ds) == nil && unix.Lstat(filepath.Join(prevRoot, e.Path), &ps) == nil && ds.Dev == ps.Dev && ds.Ino == ps.Ino {
			saved += e.Size // already one file (an update links what it keeps)
			continue
		}
		tmp := filepath.Join(filepath.Dir(dst), ".jailmgr-share")
		os.Remove(tmp)
		if err := os.Link(filepath.Join(prevRoot, e.Path), tmp); err != nil {
			continue
		}
		// The linked file must still be what prev's index says.
		var st unix.Stat_t
		if unix.Lstat(tmp, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != e.Size ||
			st.Mode&0o7777 != e.Mode || int(st.Uid) != e.UID || int(st.Gid) != e.GID || st.Mtim.Nano() != e.MTime {
			os.Remove(tmp)
			continue
		}
		if sum, err := HashFile(tmp, buf); err != nil || sum != e.SHA256 {
			os.Remove(tmp)
			continue
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			continue
		}
		touched[filepath.Dir(e.Path)] = true
		saved += e.Size
	}
	// The renames changed their folders' times: put back the indexed ones,
	// so that the tree is what its index says.
	for i := range entries {
		if e := &entries[i]; e.Type == TypeDir && touched[e.Path] {
			ts := []unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
			unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, e.Path), ts, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	if touched["."] {
		os.Chtimes(root, rootTime, rootTime)
	}
	return saved
}
