//go:build !jailmgr_init

package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// InUseError is returned by Begin for a persistent image jail that another
// session has open: two overlays on one upper dir are undefined behaviour
// in the kernel, and one user's changes as root would run as another's
// commands.
type InUseError struct {
	Jail    string
	Session string // "" when the holder could not be told
}

func (e *InUseError) Error() string {
	if e.Session == "" {
		return fmt.Sprintf("jail %s is persistent and another session has it open: end it first (see 'jailmgr session list')", e.Jail)
	}
	return fmt.Sprintf("jail %s is persistent and session %s has it open: end it first ('jailmgr session end %s')", e.Jail, e.Session, e.Session)
}

// persistLockName is the lock file in a persistent jail's upper folder,
// beside upper/ and work/.
const persistLockName = "session.lock"

// lockPersist takes the lock that gives one session at a time the upper
// folder of a persistent image jail, and writes the session's id into it
// for whoever is refused. The lock is an flock, held through the returned
// file and, once Begin hands it over, by the session init for the
// session's life: it goes by itself however the session ends (end, a
// crash, kill -9, a reboot).
func lockPersist(upper, jail, id string) (*os.File, error) {
	if err := os.MkdirAll(upper, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", upper, err)
	}
	f, err := os.OpenFile(filepath.Join(upper, persistLockName), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", upper, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			// The holder writes its id just after it locks: an empty
			// file is a holder in between.
			data, _ := io.ReadAll(io.LimitReader(f, 256))
			holder := strings.TrimSpace(string(data))
			if !ValidID(holder) {
				holder = ""
			}
			return nil, &InUseError{Jail: jail, Session: holder}
		}
		return nil, fmt.Errorf("lock %s: %w", upper, err)
	}
	// A session whose init is gone keeps the upper dir in use while its
	// root is still mounted (its teardown is under way, or was never
	// done): it must go first.
	if other, mounted, err := upperMounted(filepath.Join(upper, "upper")); err != nil || mounted {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, &InUseError{Jail: jail, Session: other}
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(id+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", upper, err)
	}
	return f, nil
}

// upperMounted tells whether an overlay with upper as its upper dir is
// mounted on the host, and by which session (its state folder's name, ""
// if the mount is none of a session's).
func upperMounted(upper string) (id string, mounted bool, err error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("overlay"))
	if err != nil {
		return "", false, fmt.Errorf("read mountinfo: %w", err)
	}
	for _, m := range infos {
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			if v, ok := strings.CutPrefix(opt, "upperdir="); ok && filepath.Clean(v) == upper {
				// <dir>/private/root, or the host's view at <dir>/root.
				dir := strings.TrimSuffix(strings.TrimSuffix(m.Mountpoint, "/root"), "/private")
				if id := filepath.Base(dir); ValidID(id) && dir != m.Mountpoint {
					return id, true, nil
				}
				return "", true, nil
			}
		}
	}
	return "", false, nil
}
