package session

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Only stdin, stdout and stderr (or a pty) go into a jail, and the
// descriptors a caller names with --preserve-fds. Whatever else a process
// holds without close-on-exec — a shell's 'exec 7</', a descriptor its
// parent forgot — would otherwise pass through jailmgr to the session's
// init and on to every command, outside the jail's root. Go opens its own
// descriptors close-on-exec; the inherited ones are marked here, first
// thing, by jailmgr, jailmgr-init and the exec helper alike. sudo's
// closefrom() is the model; close-on-exec rather than close, because the
// roles still read what they were handed (the init its go and ready pipes,
// the exec helper its spec): only an execve drops them.

// MaxPreserveFDs bounds --preserve-fds: descriptors 3 to 3+MaxPreserveFDs-1
// can be passed into a jail.
const MaxPreserveFDs = 64

// inheritedFDs has bit i set when descriptor 3+i was open, and not
// close-on-exec, when MarkInheritedCloseOnExec ran: handed over by the
// caller across execve, not opened by this process. inheritedKnown says
// that it ran.
var (
	inheritedFDs   atomic.Uint64
	inheritedKnown atomic.Bool
)

// MarkInheritedCloseOnExec marks every descriptor from 3 up close-on-exec,
// so that none of them reaches a program this process runs unless it is
// passed on by name. It remembers which of 3 to 3+MaxPreserveFDs-1 the
// caller handed over, for PreservedFiles. main calls it first.
func MarkInheritedCloseOnExec() error {
	var set uint64
	for i := 0; i < MaxPreserveFDs; i++ {
		// Everything Go opens is close-on-exec: an open descriptor without
		// the flag came through execve.
		if flags, err := unix.FcntlInt(uintptr(3+i), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			set |= 1 << i
		}
	}
	inheritedFDs.Store(set)
	inheritedKnown.Store(true)
	return closeOnExecFrom(3)
}

// closeOnExecFrom marks every descriptor from low up close-on-exec:
// close_range(2) where the kernel has its CLOSE_RANGE_CLOEXEC (5.11),
// else each descriptor /proc/self/fd lists.
func closeOnExecFrom(low int) error {
	err := unix.CloseRange(uint(low), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL):
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	// Before 5.11 (EINVAL: the flag unknown; ENOSYS: no close_range).
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < low {
			continue
		}
		// EBADF: the listing's own descriptor, closed since.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("mark descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

// ErrNotInherited is returned for a descriptor that --preserve-fds names
// but the caller did not hand over.
var ErrNotInherited = errors.New("session: descriptor not passed by the caller")

// PreservedFiles returns descriptors 3 to 3+n-1 as files, for
// RunOptions.ExtraFiles. Each must have been handed over by the caller
// (see MarkInheritedCloseOnExec): a descriptor jailmgr opened itself at
// that number (the runtime's poller, a lock, a socket of its own) is never
// passed into a jail. In a process where MarkInheritedCloseOnExec did not
// run (a test), any open descriptor passes.
func PreservedFiles(n int) ([]*os.File, error) {
	if n < 0 || n > MaxPreserveFDs {
		return nil, fmt.Errorf("preserve %d descriptors: between 0 and %d can be passed", n, MaxPreserveFDs)
	}
	known, set := inheritedKnown.Load(), inheritedFDs.Load()
	files := make([]*os.File, 0, n)
	for i := 0; i < n; i++ {
		fd := 3 + i
		if known && set&(1<<i) == 0 {
			return nil, fmt.Errorf("preserve descriptor %d: %w", fd, ErrNotInherited)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("preserve descriptor %d: %w", fd, ErrNotInherited)
		}
		files = append(files, os.NewFile(uintptr(fd), "fd "+strconv.Itoa(fd)))
	}
	return files, nil
}
