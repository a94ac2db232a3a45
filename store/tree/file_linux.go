package tree

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// WriteFile writes data to rel beneath the root, replacing whatever is
// there (a symlink at rel is replaced, not followed).
func (r *Root) WriteFile(rel string, data []byte, perm fs.FileMode) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: int64(perm), Size: int64(len(data)), ModTime: time.Now()}
	return r.WriteEntry(hdr, bytes.NewReader(data), Options{NoChown: true})
}

// ReadFile reads rel beneath the root without following symlinks out of it.
func (r *Root) ReadFile(rel string) ([]byte, error) {
	f, err := r.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Open opens rel beneath the root for reading.
func (r *Root) Open(rel string) (*os.File, error) {
	name, err := CleanName(rel)
	if err != nil {
		return nil, &PathError{"open", rel, err}
	}
	fd, err := unix.Openat2(r.fd, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: resolve})
	if err != nil {
		return nil, &PathError{"open", name, err}
	}
	return os.NewFile(uintptr(fd), path.Join(r.Path, name)), nil
}

// OpenPath opens rel beneath the root as an O_PATH descriptor without
// following any symlink, for use as a mount target (/proc/self/fd/N): a
// symlink planted in the tree cannot redirect a mount onto the host.
func (r *Root) OpenPath(rel string) (int, error) {
	name, err := CleanName(rel)
	if err != nil {
		return -1, &PathError{"open", rel, err}
	}
	if name == "" {
		name = "."
	}
	fd, err := unix.Openat2(r.fd, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolve | unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return -1, &PathError{"open", name, err}
	}
	return fd, nil
}

// Lstat describes rel beneath the root, not following a final symlink.
func (r *Root) Lstat(rel string) (*unix.Stat_t, error) {
	name, err := CleanName(rel)
	if err != nil {
		return nil, &PathError{"stat", rel, err}
	}
	dir, base := path.Split(name)
	pfd, err := r.openDir(path.Clean(dir), false)
	if err != nil {
		return nil, &PathError{"stat", name, err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if base == "" {
		base = "."
	}
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &PathError{"stat", name, err}
	}
	return &st, nil
}

// Exists reports whether rel exists beneath the root (as anything, even a
// dangling symlink).
func (r *Root) Exists(rel string) bool {
	_, err := r.Lstat(rel)
	return err == nil
}

// Remove removes the file, symlink or empty directory at rel; a missing
// rel is not an error.
func (r *Root) Remove(rel string) error {
	name, err := CleanName(rel)
	if err != nil || name == "" {
		return &PathError{"remove", rel, errors.Join(err, ErrUnsafePath)}
	}
	dir, base := path.Split(name)
	pfd, err := r.openDir(path.Clean(dir), false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &PathError{"remove", name, err}
	}
	defer unix.Close(pfd)
	err = unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	}
	if err != nil && err != unix.ENOENT {
		return &PathError{"remove", name, err}
	}
	return nil
}

// RemoveContents empties the directory rel beneath the root, keeping it.
// Nothing is followed: symlinks are removed, not entered.
func (r *Root) RemoveContents(rel string) error {
	name, err := CleanName(rel)
	if err != nil {
		return &PathError{"remove", rel, err}
	}
	fd, err := r.openDir(name, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &PathError{"remove", name, err}
	}
	defer unix.Close(fd)
	if err := removeContents(fd); err != nil {
		return &PathError{"remove", name, err}
	}
	return nil
}

func removeContents(dirfd int) error {
	d, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeEntry(d, n); err != nil {
			return err
		}
	}
	return nil
}

// removeEntry removes one name of an open directory, emptying it first if
// it is a directory. Symlinks are removed, never entered.
func removeEntry(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err != unix.EISDIR {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = removeContents(sub)
	unix.Close(sub)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// Rename moves oldRel to newRel, both beneath the root.
func (r *Root) Rename(oldRel, newRel string) error {
	on, err := CleanName(oldRel)
	if err != nil {
		return &PathError{"rename", oldRel, err}
	}
	nn, err := CleanName(newRel)
	if err != nil {
		return &PathError{"rename", newRel, err}
	}
	odir, obase := path.Split(on)
	ndir, nbase := path.Split(nn)
	ofd, err := r.openDir(path.Clean(odir), false)
	if err != nil {
		return &PathError{"rename", on, err}
	}
	defer unix.Close(ofd)
	nfd, err := r.openDir(path.Clean(ndir), true)
	if err != nil {
		return &PathError{"rename", nn, err}
	}
	defer unix.Close(nfd)
	if err := unix.Renameat(ofd, obase, nfd, nbase); err != nil {
		return &PathError{"rename", on + " to " + nn, err}
	}
	return nil
}
