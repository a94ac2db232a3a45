package store

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// VerifyReport is what Verify found. Missing and extra folders are listed
// with everything below them.
type VerifyReport struct {
	Image    string       `json:"image"`
	Indexed  bool         `json:"indexed"`  // the version has a file index (files.zst) and the tree was checked against it
	Paths    int          `json:"paths"`    // paths in the index
	Packages int          `json:"packages"` // packages whose md5sums were checked
	Files    int          `json:"files"`    // files checked against dpkg's md5sums
	Notes    []string     `json:"notes"`    // what could not be checked, and why
	Changed  []PathChange `json:"changed"`
	Missing  []PathChange `json:"missing"`
	Extra    []PathChange `json:"extra"`
}

// OK reports whether the tree is as it was committed.
func (r *VerifyReport) OK() bool {
	return len(r.Changed) == 0 && len(r.Missing) == 0 && len(r.Extra) == 0
}

// PathChange is one path that differs: between an index and the tree
// (Verify), between dpkg's md5sums and the tree (Verify, with Package set),
// or between two indexes (Diff).
type PathChange struct {
	Path string `json:"path"`
	// Content is set when what the path holds differs: its type, bytes,
	// link target or device number.
	Content bool `json:"content,omitempty"`
	// Metadata is set when its mode, owner, mtime or xattrs differ.
	Metadata bool `json:"metadata,omitempty"`
	// Fields names what differs: type, content, link, device, mode,
	// owner, mtime, xattrs, md5sum.
	Fields []string `json:"fields,omitempty"`
	// Details says, for people, each field's value before and after.
	Details []string `json:"details,omitempty"`
	// Package is the dpkg package whose md5sums list the path.
	Package string `json:"package,omitempty"`
}

func (c *PathChange) add(content bool, field, detail string) {
	if content {
		c.Content = true
	} else {
		c.Metadata = true
	}
	c.Fields = append(c.Fields, field)
	c.Details = append(c.Details, detail)
}

// compareEntries returns how got differs from want (same path), or nil.
// As in Entry.Same, a folder's mtime is not compared.
func compareEntries(want, got *Entry) *PathChange {
	c := &PathChange{Path: want.Path}
	if want.Type != got.Type {
		c.add(true, "type", fmt.Sprintf("type %s → %s", want.Type, got.Type))
		return c
	}
	if want.SHA256 != got.SHA256 || want.Size != got.Size {
		d := fmt.Sprintf("sha256 %s → %s", short(want.SHA256), short(got.SHA256))
		if want.Size != got.Size {
			d += fmt.Sprintf(", size %d → %d", want.Size, got.Size)
		}
		c.add(true, "content", d)
	}
	if want.Link != got.Link {
		c.add(true, "link", fmt.Sprintf("link %s → %s", want.Link, got.Link))
	}
	if want.Major != got.Major || want.Minor != got.Minor {
		c.add(true, "device", fmt.Sprintf("device %d:%d → %d:%d", want.Major, want.Minor, got.Major, got.Minor))
	}
	if want.Mode != got.Mode {
		c.add(false, "mode", fmt.Sprintf("mode %04o → %04o", want.Mode, got.Mode))
	}
	if want.UID != got.UID || want.GID != got.GID {
		c.add(false, "owner", fmt.Sprintf("owner %d:%d → %d:%d", want.UID, want.GID, got.UID, got.GID))
	}
	if want.Type != TypeDir && want.MTime != got.MTime {
		c.add(false, "mtime", fmt.Sprintf("mtime %s → %s", nanoTime(want.MTime), nanoTime(got.MTime)))
	}
	if d := xattrChanges(want.Xattrs, got.Xattrs); d != "" {
		c.add(false, "xattrs", "xattrs "+d)
	}
	if len(c.Fields) == 0 {
		return nil
	}
	return c
}

func xattrChanges(want, got map[string]string) string {
	var out []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			out = append(out, k+" removed")
		} else if g != v {
			out = append(out, k+" changed")
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+" added")
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	if sum == "" {
		return "none"
	}
	return sum
}

func nanoTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// Verify checks an image version's tree against its file index (every
// path's type, content, link, device, mode, owner, mtime and xattrs; paths
// missing and paths added) and against the md5sums of dpkg's database in
// the image, dpkg's diversions honoured and conffiles left out (an admin
// may edit those). A version committed before indexes existed is checked
// against md5sums only, which the report's Notes say.
//
// Nothing is followed out of the root: the index walk follows no symlink
// at all, and dpkg's paths (which may run through a merged-/usr "bin ->
// usr/bin") resolve as they would inside the image, the root acting as "/".
// A file that cannot be read is an error, not a finding: run as root.
func Verify(img *Image) (*VerifyReport, error) {
	r := &VerifyReport{Image: img.Ref(), Notes: []string{}, Changed: []PathChange{}, Missing: []PathChange{}, Extra: []PathChange{}}
	rootfd, err := unix.Open(img.RootFS(), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", img.Ref(), &fs.PathError{Op: "open", Path: img.RootFS(), Err: err})
	}
	defer unix.Close(rootfd)
	index, err := ReadIndex(filepath.Join(img.Dir, IndexFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Notes = append(r.Notes, "no file index (this version was committed before files.zst existed): only dpkg's md5sums were checked, so added files and changed metadata go unseen")
	case err != nil:
		return nil, fmt.Errorf("verify %s: %w", img.Ref(), err)
	default:
		r.Indexed, r.Paths = true, len(index)
		tree, err := walkTree(rootfd)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", img.Ref(), err)
		}
		compareTree(r, index, tree)
	}
	pkgs, files, err := checkMD5Sums(r, rootfd)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", img.Ref(), err)
	}
	r.Packages, r.Files = pkgs, files
	if pkgs == 0 {
		if !r.Indexed {
			return nil, fmt.Errorf("verify %s: nothing to check it against: it has no file index and no dpkg md5sums", img.Ref())
		}
		r.Notes = append(r.Notes, "no dpkg md5sums in the image: checked against the file index only")
	}
	for _, l := range [][]PathChange{r.Changed, r.Missing, r.Extra} {
		sort.Slice(l, func(i, j int) bool { return PathLess(l[i].Path, l[j].Path) })
	}
	return r, nil
}

// compareTree merges the index and the walked tree, both in PathLess order.
func compareTree(r *VerifyReport, want, got []Entry) {
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && PathLess(want[i].Path, got[j].Path):
			r.Missing = append(r.Missing, PathChange{Path: want[i].Path})
			i++
		case i == len(want) || PathLess(got[j].Path, want[i].Path):
			r.Extra = append(r.Extra, PathChange{Path: got[j].Path})
			j++
		default:
			if c := compareEntries(&want[i], &got[j]); c != nil {
				r.Changed = append(r.Changed, *c)
			}
			i++
			j++
		}
	}
}

// resolveNoSymlinks resolves a path below the root without following any
// symlink, so that a tree changed since the walk cannot redirect a read.
const resolveNoSymlinks = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// walkTree indexes the tree below rootfd as BuildIndex does, but through
// descriptors: each folder is opened with O_NOFOLLOW from its parent, so a
// symlink is recorded, never entered.
func walkTree(rootfd int) ([]Entry, error) {
	fd, err := unix.Openat(rootfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	var entries []Entry
	if err := walkDir(fd, "", &entries); err != nil {
		return nil, err
	}
	err = hashEntries(entries, func(e *Entry, buf []byte) error {
		sum, err := hashAt(rootfd, e.Path, resolveNoSymlinks, sha256.New(), buf)
		if errors.Is(err, errNotRegular) {
			return fmt.Errorf("/%s changed while it was being verified; verify again", e.Path)
		}
		e.SHA256 = sum
		return err
	})
	return entries, err
}

// walkDir appends the entries below the open folder fd (which it closes),
// in PathLess order.
func walkDir(fd int, rel string, out *[]Entry) error {
	dir := os.NewFile(uintptr(fd), rel)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read folder /%s: %w", rel, err)
	}
	sort.Strings(names)
	for _, name := range names {
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat /%s: %w", p, err)
		}
		e := entryFromStat(p, &st)
		if e.Type == TypeSymlink {
			if e.Link, err = readlinkAt(fd, name); err != nil {
				return fmt.Errorf("read link /%s: %w", p, err)
			}
		}
		if e.Type != TypeSymlink {
			// The folder's descriptor stands for its path; only the last
			// name is looked up, and l*xattr do not follow it.
			if e.Xattrs, err = readXattrs("/proc/self/fd/" + strconv.Itoa(fd) + "/" + name); err != nil {
				return fmt.Errorf("read xattrs of /%s: %w", p, err)
			}
		}
		*out = append(*out, e)
		if e.Type == TypeDir {
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open folder /%s: %w", p, permissionHint(err))
			}
			if err := walkDir(sub, p, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// hashEntries calls hash for every regular file of entries, on a few cores.
func hashEntries(entries []Entry, hash func(e *Entry, buf []byte) error) error {
	idx := make(chan int)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < max(2, runtime.NumCPU()); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range idx {
				if err := hash(&entries[i], buf); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
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
	return first
}

var errNotRegular = errors.New("not a regular file")

// hashAt hashes the regular file at rel below rootfd (see openAt).
func hashAt(rootfd int, rel string, resolve uint64, h hash.Hash, buf []byte) (string, error) {
	f, err := openAt(rootfd, rel, resolve)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Not f itself: *os.File.WriteTo would ignore buf and allocate.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil {
		return "", fmt.Errorf("read /%s: %w", rel, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openAt opens the regular file at rel below rootfd for reading, resolved
// as resolve says, its last component never followed. Only a regular file
// is opened for reading (a device or fifo never is); anything else is
// errNotRegular.
func openAt(rootfd int, rel string, resolve uint64) (*os.File, error) {
	pfd, err := unix.Openat2(rootfd, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolve})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/" + rel, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: "/" + rel, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errNotRegular
	}
	// Reopening the O_PATH descriptor reads that very inode, with the
	// usual permission checks.
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/" + rel, Err: permissionHint(err)}
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// permissionHint says what to do about a permission error.
func permissionHint(err error) error {
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (verify reads every file of the image: run it as root)", err)
	}
	return err
}

// resolveInRoot resolves dpkg's paths as inside the image: symlinks are
// followed, but "/" and ".." stop at the root.
const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// packaged is one line of a package's md5sums.
type packaged struct {
	pkg, path, md5 string
	canon          string // path as the index names it, found while checking
	result         error  // nil, errMissing, errNotRegular, errUnreachable or a *md5Mismatch
}

var (
	errMissing     = errors.New("missing")
	errUnreachable = errors.New("unreachable")
)

type md5Mismatch struct{ got string }

func (m *md5Mismatch) Error() string { return "md5sum " + m.got }

// checkMD5Sums checks the files dpkg's md5sums list and merges what it
// finds into r. It returns how many packages and files it checked.
func checkMD5Sums(r *VerifyReport, rootfd int) (pkgs, files int, err error) {
	db, err := readDpkgDB(rootfd)
	if err != nil || db == nil {
		return 0, 0, err
	}
	rootReal, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(rootfd))
	if err != nil {
		return 0, 0, err
	}
	var (
		next int
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for w := 0; w < max(2, runtime.NumCPU()); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(db.files) {
					return
				}
				if err := checkPackaged(rootfd, rootReal, &db.files[i], buf); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, 0, errs[0]
	}
	mergeMD5Findings(r, db.files)
	return db.packages, len(db.files), nil
}

// checkPackaged checks one file against its md5sum and records the result.
func checkPackaged(rootfd int, rootReal string, f *packaged, buf []byte) error {
	f.canon = f.path
	sum, err := hashAt(rootfd, f.path, resolveInRoot, md5.New(), buf)
	switch {
	case err == nil:
	case errors.Is(err, errNotRegular):
		f.result = errNotRegular
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		f.result = errMissing
	case errors.Is(err, unix.ELOOP):
		f.result = errUnreachable
	default:
		return err
	}
	// Name the path as the index does: "bin/ls" is "usr/bin/ls" where
	// bin is a symlink to usr/bin.
	dir, base := filepath.Split(f.path)
	if dir == "" {
		dir = "."
	}
	if dfd, err := unix.Openat2(rootfd, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveInRoot}); err == nil {
		real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(dfd))
		unix.Close(dfd)
		if err == nil && real == rootReal {
			f.canon = base
		} else if rel, ok := strings.CutPrefix(real, strings.TrimSuffix(rootReal, "/")+"/"); err == nil && ok {
			f.canon = rel + "/" + base
		}
	}
	if f.result == nil && sum != f.md5 {
		f.result = &md5Mismatch{got: sum}
	}
	return nil
}

// mergeMD5Findings adds what dpkg's md5sums found to r, onto the index's
// finding for the same path when there is one.
func mergeMD5Findings(r *VerifyReport, files []packaged) {
	type at struct {
		list *[]PathChange
		i    int
	}
	seen := map[string]at{}
	for _, l := range []*[]PathChange{&r.Changed, &r.Missing, &r.Extra} {
		for i := range *l {
			seen[(*l)[i].Path] = at{l, i}
		}
	}
	for i := range files {
		f := &files[i]
		if f.result == nil {
			continue
		}
		var c PathChange
		target := &r.Changed
		var mm *md5Mismatch
		switch {
		case errors.As(f.result, &mm):
			c.add(true, "md5sum", fmt.Sprintf("md5sum %s → %s (dpkg's, of package %s)", short(f.md5), short(mm.got), f.pkg))
		case f.result == errNotRegular:
			c.add(true, "type", fmt.Sprintf("not a regular file, as package %s has it", f.pkg))
		case f.result == errUnreachable:
			target = &r.Missing
			c.Details = []string{"unreachable: too many levels of symbolic links"}
		default:
			target = &r.Missing
		}
		if s, ok := seen[f.canon]; ok {
			e := &(*s.list)[s.i]
			if e.Package == "" {
				e.Package = f.pkg
			} else if !strings.Contains(", "+e.Package+", ", ", "+f.pkg+", ") {
				e.Package += ", " + f.pkg
			}
			for k, field := range c.Fields {
				if !slices.Contains(e.Fields, field) {
					e.add(c.Content, field, c.Details[k])
				}
			}
			continue
		}
		c.Path, c.Package = f.canon, f.pkg
		*target = append(*target, c)
		seen[c.Path] = at{target, len(*target) - 1}
	}
}
