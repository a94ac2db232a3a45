package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ErrInUse is wrapped by an *InUseError.
var ErrInUse = errors.New("store: image version in use")

// InUseError says who uses a version that was to be removed.
type InUseError struct {
	Ref string
	// Mounts are the roots, mounted on the host, of sessions whose overlay
	// has the version as its lower layer.
	Mounts []string
	// Busy is set when an update or export is reading the version.
	Busy bool
}

func (e *InUseError) Error() string {
	var who []string
	if len(e.Mounts) > 0 {
		who = append(who, fmt.Sprintf("the sessions with roots %s", strings.Join(e.Mounts, ", ")))
	}
	if e.Busy {
		who = append(who, "an update or export reading it")
	}
	return fmt.Sprintf("%s is in use by %s: end them first, or use --force to end the sessions", e.Ref, strings.Join(who, " and "))
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// inUse reports who uses img, or nil.
func (s *Store) inUse(img *Image) (*InUseError, error) {
	e := &InUseError{Ref: img.Ref()}
	rootfs := img.RootFS()
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("overlay"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	for _, m := range infos {
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			lowers, ok := strings.CutPrefix(opt, "lowerdir=")
			if !ok {
				continue
			}
			for _, l := range strings.Split(lowers, ":") {
				if filepath.Clean(l) == rootfs {
					e.Mounts = append(e.Mounts, m.Mountpoint)
				}
			}
		}
	}
	f, err := os.OpenFile(filepath.Join(img.Dir, useLock), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			e.Busy = true
		}
		f.Close()
	}
	if len(e.Mounts) == 0 && !e.Busy {
		return nil, nil
	}
	return e, nil
}

// useLock is the file, beside rootfs/, that readers of a version hold a
// shared lock on.
const useLock = "use.lock"

// Use marks img as being read (by an update or an export) until release is
// called: Remove and GC leave it alone meanwhile.
func (s *Store) Use(img *Image) (release func(), err error) {
	// Under the store lock, so that no removal is between its check and
	// its rename.
	l, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	f, err := os.OpenFile(filepath.Join(img.Dir, useLock), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("use %s: %w", img.Ref(), err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("use %s: %w", img.Ref(), err)
	}
	if _, err := os.Stat(img.RootFS()); err != nil {
		f.Close()
		return nil, fmt.Errorf("use %s: %w", img.Ref(), ErrNotFound)
	}
	return func() { f.Close() }, nil
}
