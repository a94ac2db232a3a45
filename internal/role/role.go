// Package role runs jailmgr's internal roles: the processes jailmgr starts
// from its own binary under a hidden first argument — a session's init,
// its monitor, the exec helper that becomes a jail's command, the
// bootstrap's chroot helper. runc's init is the model: one hidden entry,
// one dispatch.
//
// One rule holds for all of them, checked here before any role's code
// runs: a role never runs with privileges its starter did not have. A
// role trusts what it is handed (a spec on a descriptor, a state folder, a
// root to chroot into) because jailmgr, as root, handed it; a user who
// starts the setuid-root jailmgr with a role's argument hands it whatever
// they like, so a setuid or setgid start is refused outright.
package role

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Prefix starts every role's argument.
const Prefix = "__jailmgr-"

// Func runs a role with the arguments after the role's own and returns
// the process's exit status.
type Func func(args []string) int

var roles = map[string]Func{}

// Register makes name (which starts with Prefix) a role. Packages register
// their roles from init functions.
func Register(name string, f Func) {
	if !strings.HasPrefix(name, Prefix) {
		panic("role: " + name + " does not start with " + Prefix)
	}
	if _, dup := roles[name]; dup {
		panic("role: " + name + " registered twice")
	}
	roles[name] = f
}

// Is tells whether args[1] names a registered role.
func Is(args []string) bool {
	if len(args) < 2 {
		return false
	}
	_, ok := roles[args[1]]
	return ok
}

// Run runs the role os.Args names and exits; it returns at once when the
// process was started as none. main calls it first, before anything
// (the setuid take-over included) looks at the command line.
func Run() {
	if !Is(os.Args) {
		return
	}
	if elevated() {
		fmt.Fprintf(os.Stderr, "jailmgr: %s is an internal role that only jailmgr itself starts, as root; it does not run through a setuid start\n", os.Args[1])
		os.Exit(126)
	}
	os.Exit(roles[os.Args[1]](os.Args[2:]))
}

// elevated tells whether this process got privileges its starter does not
// have: a setuid or setgid start (real and effective ids differ). jailmgr
// itself starts roles as root through and through, so they pass; a plain
// user's non-setuid jailmgr passes too, and runs the role as that user.
func elevated() bool {
	ruid, euid, suid := unix.Getresuid()
	rgid, egid, sgid := unix.Getresgid()
	return ruid != euid || ruid != suid || rgid != egid || rgid != sgid
}
