package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install sets no_new_privs and loads filter into every thread of the
// calling process. It cannot be undone, and the filter is inherited across
// fork and execve: it must run in the process that then execs the jailed
// command (the session init, after it has dropped capabilities and before
// it serves requests), never in jailmgr's own long-lived process.
//
// no_new_privs is what lets an unprivileged process install a filter, and it
// keeps setuid binaries in the jail from gaining privileges the filter was
// written without. TSYNC puts every Go runtime thread under the filter at
// once: goroutines move between threads, so a filter on one thread only
// would leave the others open.
func Install(filter []unix.SockFilter) error { return installAll(filter, true) }

// InstallPrivileged loads filter into every thread of the calling process
// without setting no_new_privs, which the kernel allows a process holding
// CAP_SYS_ADMIN. It is for filters that take nothing away from a trusted
// root (the bootstrap's sync suppression), where no_new_privs would change
// how the root's own programs run.
func InstallPrivileged(filter []unix.SockFilter) error { return installAll(filter, false) }

func installAll(filter []unix.SockFilter, noNewPrivs bool) error {
	if err := checkSize(filter); err != nil {
		return err
	}
	// prctl affects only the calling thread (TSYNC then copies it to the
	// others), so both calls must run on the same one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("install seccomp filter: %w", errno)
	}
	// With TSYNC the kernel returns the id of a thread it could not
	// synchronise instead of failing with an errno.
	if tid != 0 {
		return fmt.Errorf("install seccomp filter: %w: thread %d", ErrThreadSync, tid)
	}
	return nil
}

// InstallThread sets no_new_privs and loads filter into the calling thread
// alone, which the caller has locked (runtime.LockOSThread) and must never
// unlock: the filter stays with that thread and with every process forked
// from it, while the process's other threads stay free of it. The session
// init starts commands from such a thread, so that they begin life under
// the filter without a helper process of their own.
func InstallThread(filter []unix.SockFilter) error {
	if err := checkSize(filter); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("install seccomp filter: %w", errno)
	}
	return nil
}

// checkSize refuses a program the kernel would not load for its length.
func checkSize(filter []unix.SockFilter) error {
	if len(filter) == 0 {
		return errors.New("install seccomp filter: empty program")
	}
	if len(filter) > unix.BPF_MAXINSNS {
		return fmt.Errorf("install seccomp filter: %w: %d instructions", ErrTooLarge, len(filter))
	}
	return nil
}
