package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Staging is a work area on the store's filesystem. Its lock is held for as
// long as the process lives, so that Open can tell a live area from a leftover.
type Staging struct {
	Dir   string // staging/<id>
	store *Store
	lock  *os.File
	cache *os.File // shared cache lock: gc leaves the package cache alone
	// index, when set, is the tree's index, already known entry by entry
	// (an import checked every entry against the one it carries): Commit
	// need not read the whole tree again to make it.
	index []Entry
	// Shared is, after Commit, how many bytes of the new version are hard
	// links to the version before it.
	Shared int64
}

// NewStaging creates and locks a new staging area with an empty rootfs/.
func (s *Store) NewStaging() (*Staging, error) {
	var (
		dir  string
		lock *os.File
		err  error
	)
	// A sweep running meanwhile may take the new lock file for a leftover
	// (it has no area beside it yet) and remove it between its creation
	// and the flock: an area is only ours if the lock we hold is the one
	// at its path. Else another name is tried.
	for try := 0; ; try++ {
		dir = filepath.Join(s.Dir, "staging", newID())
		lock, err = os.OpenFile(dir+".lock", os.O_CREATE|os.O_EXCL|os.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create staging area: %w", err)
		}
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil && holdsPath(lock, dir+".lock") {
			break
		}
		lock.Close()
		if try == 10 {
			return nil, fmt.Errorf("lock staging area: %w", errors.Join(err, errors.New("the lock file keeps being taken")))
		}
	}
	cache, err := s.lockCache(unix.LOCK_SH)
	if err != nil {
		lock.Close()
		os.Remove(dir + ".lock")
		return nil, err
	}
	// The area becomes the version's folder, root's alone as the store's
	// are; rootfs is the image's / and keeps the usual mode.
	err = os.Mkdir(dir, 0o700)
	if err == nil {
		err = os.Mkdir(filepath.Join(dir, "rootfs"), 0o755)
	}
	if err != nil {
		lock.Close()
		cache.Close()
		os.Remove(dir + ".lock")
		return nil, fmt.Errorf("create staging area: %w", err)
	}
	return &Staging{Dir: dir, store: s, lock: lock, cache: cache}, nil
}

// Root is the staged root filesystem.
func (st *Staging) Root() string { return filepath.Join(st.Dir, "rootfs") }

// Abort removes the staging area and releases its lock.
func (st *Staging) Abort() error {
	if st.lock == nil {
		return nil
	}
	err := removeAll(st.Dir)
	if err == nil {
		os.Remove(st.Dir + ".lock")
	}
	st.lock.Close()
	st.lock = nil
	st.cache.Close()
	return err
}

// Commit writes the manifest and renames the staging area into place as the
// next version of name. The rename is the commit point: a crash before it
// leaves only a staging leftover, never a partial image.
func (st *Staging) Commit(name string, m *Manifest) (*Image, error) {
	return st.CommitContext(context.Background(), name, m)
}

// CommitContext is Commit that gives up, committing nothing, when ctx ends
// before the rename: an interrupt is honoured up to the commit point.
// After it, the version exists, and CommitContext returns it whatever ctx
// says.
func (st *Staging) CommitContext(ctx context.Context, name string, m *Manifest) (*Image, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w %q", ErrBadRef, name)
	}
	// Index the tree and share unchanged files with the newest version
	// before taking the lock: both read the whole tree.
	entries := st.index
	if entries == nil {
		var err error
		if entries, err = BuildIndex(st.Root()); err != nil {
			return nil, err
		}
	}
	if prev, err := st.store.Resolve(name); err == nil {
		st.Shared = shareWith(st.Root(), entries, prev)
	}
	if err := WriteIndex(filepath.Join(st.Dir, IndexFile), entries); err != nil {
		return nil, err
	}
	l, err := st.store.lock()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	// Indexing took long, and so may the wait for the lock: the last
	// look before the commit point.
	if ctx.Err() != nil {
		return nil, fmt.Errorf("commit image %s: %w", name, context.Cause(ctx))
	}
	vs, err := st.store.versions(name)
	if err != nil {
		return nil, err
	}
	next := 1
	if len(vs) > 0 {
		next = vs[len(vs)-1] + 1
	}
	m.Name, m.Version = name, next
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(st.Dir, "manifest.json"), append(data, '\n')); err != nil {
		return nil, err
	}
	parent := filepath.Join(st.store.Dir, "images", name)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("commit image %s: %w", name, err)
	}
	dst := filepath.Join(parent, strconv.Itoa(next))
	if err := os.Rename(st.Dir, dst); err != nil {
		return nil, fmt.Errorf("commit image %s:%d: %w", name, next, err)
	}
	syncDir(parent)
	os.Remove(st.Dir + ".lock")
	st.lock.Close()
	st.lock = nil
	st.cache.Close()
	return &Image{Name: name, Version: next, Dir: dst, Manifest: *m}, nil
}

// sweep removes staging areas whose owner is gone.
func (s *Store) sweep() error {
	dir := filepath.Join(s.Dir, "staging")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sweep staging: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".lock") {
			if _, err := os.Lstat(filepath.Join(dir, strings.TrimSuffix(name, ".lock"))); errors.Is(err, fs.ErrNotExist) {
				s.tryRemoveLocked(filepath.Join(dir, strings.TrimSuffix(name, ".lock")))
			}
			continue
		}
		if err := s.tryRemoveLocked(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// tryRemoveLocked removes path if nobody holds path.lock.
func (s *Store) tryRemoveLocked(path string) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, fs.ErrPermission) {
		return nil // a reader without write access leaves the sweep to root
	}
	if err != nil {
		return fmt.Errorf("sweep %s: %w", path, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // a live process owns it
	}
	if !holdsPath(lock, path+".lock") {
		return nil // another sweep removed it; its owner, if any, made another
	}
	if err := removeAll(path); err != nil {
		return fmt.Errorf("sweep %s: %w", path, err)
	}
	return os.Remove(path + ".lock")
}

// holdsPath tells whether f is still the file at path (not one unlinked
// and replaced since it was opened).
func holdsPath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}
