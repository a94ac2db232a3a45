package tree

import (
	"archive/tar"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Root is an open root directory that entries are written into.
type Root struct {
	fd   int
	Path string
}

// OpenRoot opens dir as a root to write into.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &PathError{"open root", dir, err}
	}
	return &Root{fd: fd, Path: dir}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return unix.Close(r.fd) }

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openDir opens the directory rel (clean, relative) beneath the root,
// creating missing components with mode 0755 when create is set.
func (r *Root) openDir(rel string, create bool) (int, error) {
	if rel == "" || rel == "." {
		return unix.Openat2(r.fd, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolve})
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolve})
		if err == nil {
			return fd, nil
		}
		if err == unix.EXDEV || err == unix.ELOOP {
			return -1, fmt.Errorf("%w: %q resolves outside the root through a symlink", ErrUnsafePath, rel)
		}
		if err != unix.ENOENT || !create {
			return -1, err
		}
		parent, base := path.Split(rel)
		pfd, err := r.openDir(path.Clean(parent), true)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(pfd, base, 0o755)
		unix.Close(pfd)
		if err != nil && err != unix.EEXIST {
			return -1, err
		}
	}
}

// MkdirAll creates rel and its parents (mode 0755) beneath the root.
func (r *Root) MkdirAll(rel string) error {
	rel, err := CleanName(rel)
	if err != nil {
		return &PathError{"mkdir", rel, err}
	}
	fd, err := r.openDir(rel, true)
	if err != nil {
		return &PathError{"mkdir", rel, err}
	}
	return unix.Close(fd)
}

// Options changes how WriteEntry writes one entry.
type Options struct {
	// Name, when set, is written instead of the header's name (dpkg
	// unpacks a new conffile as "<name>.dpkg-new").
	Name string
	// Hash, when set, receives a regular file's content as it is written.
	Hash hash.Hash
	// NoChown skips ownership changes (for unprivileged tests).
	NoChown bool
}

// WriteEntry writes one tar entry beneath the root. Directories that exist
// are kept, as are symlinks to directories inside the root (merged /usr);
// files, links and special files replace what is at their name.
func (r *Root) WriteEntry(hdr *tar.Header, body io.Reader, o Options) error {
	raw := hdr.Name
	if o.Name != "" {
		raw = o.Name
	}
	name, err := CleanName(raw)
	if err != nil {
		return &PathError{"write", raw, err}
	}
	if name == "" {
		return nil // the root itself: its metadata is the caller's
	}
	dir, base := path.Split(name)
	pfd, err := r.openDir(path.Clean(dir), true)
	if err != nil {
		return &PathError{"write", name, err}
	}
	defer unix.Close(pfd)
	if err := r.write(pfd, name, base, hdr, body, o); err != nil {
		return &PathError{"write", name, err}
	}
	return nil
}

func (r *Root) write(pfd int, name, base string, hdr *tar.Header, body io.Reader, o Options) error {
	perm := uint32(hdr.Mode) & 0o7777
	mt := hdr.ModTime
	if mt.IsZero() {
		// No time given (a node jailmgr makes itself): the epoch, not the
		// year 1, which UnixNano cannot hold.
		mt = time.Unix(0, 0)
	}
	mtime := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err := unix.Mkdirat(pfd, base, 0o700)
		if err == unix.EEXIST {
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				return nil
			case unix.S_IFLNK:
				// Keep a symlink to a directory, as dpkg does: merged /usr
				// depends on it. It must stay inside the root.
				fd, err := r.openDir(name, false)
				if err != nil {
					return fmt.Errorf("directory over a symlink: %w", err)
				}
				return unix.Close(fd)
			default:
				return fmt.Errorf("%w: a directory would replace a file", ErrConflict)
			}
		}
		if err != nil {
			return err
		}
		return r.meta(pfd, base, hdr, perm, mtime, o)
	case tar.TypeReg, tar.TypeRegA:
		if err := removeNonDir(pfd, base); err != nil {
			return err
		}
		fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		w := fdWriter(fd)
		var dst io.Writer = w
		if o.Hash != nil {
			dst = io.MultiWriter(w, o.Hash)
		}
		bufp := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(dst, io.LimitReader(body, hdr.Size), *bufp)
		copyBufs.Put(bufp)
		if err == nil && n != hdr.Size {
			err = io.ErrUnexpectedEOF
		}
		if err == nil && !o.NoChown {
			err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
		}
		if err == nil {
			// After chown: chown clears setuid/setgid bits.
			err = unix.Fchmod(fd, perm)
		}
		if err == nil {
			err = unix.UtimesNanoAt(pfd, base, mtime, unix.AT_SYMLINK_NOFOLLOW)
		}
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		if err := r.symlink(pfd, base, hdr.Linkname); err != nil {
			return err
		}
		if !o.NoChown {
			if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		return unix.UtimesNanoAt(pfd, base, mtime, unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeLink:
		target, err := CleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link: %w", err)
		}
		if target == "" {
			return fmt.Errorf("%w: hard link to the root", ErrUnsafePath)
		}
		tdir, tbase := path.Split(target)
		tfd, err := r.openDir(path.Clean(tdir), false)
		if err != nil {
			return fmt.Errorf("hard link target %s: %w", target, err)
		}
		defer unix.Close(tfd)
		if err := removeNonDir(pfd, base); err != nil {
			return err
		}
		return unix.Linkat(tfd, tbase, pfd, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := removeNonDir(pfd, base); err != nil {
			return err
		}
		mode := perm
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		if err := unix.Mknodat(pfd, base, mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return err
		}
		return r.meta(pfd, base, hdr, perm, mtime, o)
	default:
		return fmt.Errorf("%w %q", ErrUnsupported, hdr.Typeflag)
	}
}

func (r *Root) meta(pfd int, base string, hdr *tar.Header, perm uint32, mtime []unix.Timespec, o Options) error {
	if !o.NoChown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if err := unix.Fchmodat(pfd, base, perm, 0); err != nil {
		return err
	}
	return unix.UtimesNanoAt(pfd, base, mtime, unix.AT_SYMLINK_NOFOLLOW)
}

// symlink puts a symlink to target at base. A symlink that is already
// there with the same target is kept, and any other is replaced by a
// rename: the name never goes missing, so a writer resolving a path through
// it at the same moment (a package unpacking into /sbin while another ships
// the merged-/usr symlink /sbin) never finds a gap to create a folder in.
func (r *Root) symlink(pfd int, base, target string) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return unix.Symlinkat(target, pfd, base)
	case err != nil:
		return err
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return fmt.Errorf("%w: would replace a directory", ErrConflict)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		if old, err := readlinkat(pfd, base); err == nil && old == target {
			return nil
		}
	}
	tmp := fmt.Sprintf(".%s.jailmgr-%d", base, tmpSeq.Add(1))
	if err := unix.Symlinkat(target, pfd, tmp); err != nil {
		return err
	}
	if err := unix.Renameat(pfd, tmp, pfd, base); err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return err
	}
	return nil
}

// tmpSeq makes the temporary names of concurrent writers distinct.
var tmpSeq atomic.Uint64

func readlinkat(dfd int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// removeNonDir makes room for a new entry; it never removes a directory.
func removeNonDir(pfd int, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%w: would replace a directory", ErrConflict)
	}
	return unix.Unlinkat(pfd, base, 0)
}

// Symlink creates (or replaces) a symlink at rel pointing to target.
func (r *Root) Symlink(target, rel string) error {
	return r.WriteEntry(&tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: target, ModTime: time.Unix(0, 0)}, nil, Options{})
}

type fdWriter int

func (f fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(f), p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}
