// Package store owns jailmgr's on-disk state: images and their versions,
// manifests, the shared package cache, staging areas and the lock that
// serialises mutations.
//
// Layout under the store directory:
//
//	images/<name>/<version>/rootfs/        immutable once committed
//	images/<name>/<version>/manifest.json
//	images/<name>/<version>/files.zst      index of every path of rootfs/
//	tags/<name>/<tag>                      "name:version" the tag points at
//	staging/<id>/                          work in progress (with staging/<id>.lock)
//	cache/debs/<sha256>.deb                shared package cache
//	cache/indexes/<sha256>.zst             verified Packages indexes
//	logs/<run>-<time>.log                  logs of failed runs (KeepLog), removed by gc after a day
//
// Crash safety follows one rule: nothing appears under images/ except by a
// rename of a complete staging directory, and a staging directory whose lock
// is not held by a live process is removed by the next Open.
package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"jailmgr/internal/names"
)

// DefaultDir is the store used when neither --store nor JAILMGR_STORE is set.
// A var so that a build can bake another (make install STOREDIR=...).
var DefaultDir = "/var/lib/jailmgr"

var (
	// ErrNotFound is returned for a reference that names no image.
	ErrNotFound = errors.New("store: image not found")
	// ErrBadRef is returned for a malformed image reference.
	ErrBadRef = errors.New("store: invalid image reference")
	// ErrMounted is returned when a directory to remove still has mounts below it.
	ErrMounted = errors.New("store: directory has mounts below it")
)

// Store is an opened store directory.
type Store struct {
	Dir string
}

// Open creates the store's layout if needed and sweeps staging areas that no
// live process owns (leftovers of an interrupted bootstrap or removal).
//
// The store is root's alone (0700, and so are the folders it makes): image
// roots and session upper dirs hold setuid files and device nodes that
// other users must not reach from the host, whatever the modes inside. A
// store made before that rule, with looser modes, is tightened when root
// opens it.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{Dir: abs}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	for _, d := range []string{"images", "staging", "cache", filepath.Join("cache", "debs"), filepath.Join("cache", "indexes"), "logs"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("open store %s: %w", abs, err)
		}
	}
	if os.Geteuid() == 0 {
		if err := s.tighten(); err != nil {
			return nil, err
		}
	}
	if err := s.sweep(); err != nil {
		return nil, err
	}
	return s, nil
}

// storeFolders are the store's own folders, which tighten closes to other
// users; what is below them is reachable only through them.
var storeFolders = []string{"", "images", "staging", "cache", filepath.Join("cache", "debs"), filepath.Join("cache", "indexes"), "tags", "sessions", "persist", "logs"}

// tighten takes group and other permissions off the store's own folders,
// which older versions made 0755.
func (s *Store) tighten() error {
	for _, d := range storeFolders {
		p := filepath.Join(s.Dir, d)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("open store %s: %w", s.Dir, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("open store %s: %s is not a folder", s.Dir, p)
		}
		if st.Mode&0o077 != 0 {
			if err := unix.Chmod(p, st.Mode&0o700); err != nil {
				return fmt.Errorf("open store %s: %w", s.Dir, err)
			}
		}
	}
	return nil
}

// CacheDir is the folder of the shared, content-addressed package cache.
func (s *Store) CacheDir() string { return filepath.Join(s.Dir, "cache", "debs") }

// IndexCacheDir is the folder of verified package indexes, by the SHA256 of
// the compressed file the Release file lists, kept decompressed and
// recompressed with zstd (fast to read again).
func (s *Store) IndexCacheDir() string { return filepath.Join(s.Dir, "cache", "indexes") }

// CachePath is where the package with the given SHA256 is cached.
func (s *Store) CachePath(sha256 string) string {
	return filepath.Join(s.CacheDir(), sha256+".deb")
}

// lock takes the store-wide lock that serialises commits and removals.
func (s *Store) lock() (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return f, nil
}

// ParseRef splits "name" or "name:N". Version 0 means the newest. A tag
// ("name:TAG") is not accepted here: see ParseTag.
func ParseRef(ref string) (name string, version int, err error) {
	name, v, hasVersion := strings.Cut(ref, ":")
	if !validName(name) {
		return "", 0, fmt.Errorf("%w %q: a name is letters, digits, '.', '-' and '_'", ErrBadRef, ref)
	}
	if !hasVersion {
		return name, 0, nil
	}
	version, err = strconv.Atoi(v)
	if err != nil || version < 1 {
		return "", 0, fmt.Errorf("%w %q: the version after ':' is a number from 1", ErrBadRef, ref)
	}
	return name, version, nil
}

// ValidName reports whether name can name an image.
func ValidName(name string) bool { return validName(name) }

func validName(n string) bool { return names.Valid(n, 128) }

// versions lists the committed versions of name, ascending.
func (s *Store) versions(name string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, "images", name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", name, err)
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && n > 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// newID returns a random identifier for a staging area.
func newID() string { return strings.ToLower(rand.Text()[:16]) }
