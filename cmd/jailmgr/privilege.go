package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"jailmgr/session"
)

// The privilege model. Like schroot, jailmgr can be installed setuid root
// ('make install SETUID=1') so that users who are not root open sessions in
// the jails the configuration grants them. Run that way by such a user, it:
//
//   - notes the real user and group, then drops every variable that could
//     steer it (JAILMGR_*, SUDO_*), and records the real caller in SUDO_UID
//     and SUDO_GID, which session.Caller trusts only because the real uid is
//     now 0 and it alone wrote them;
//   - becomes root through and through (real, effective and saved ids), so
//     that the helpers it re-executes are plain root processes and the
//     caller can neither signal nor trace it;
//   - sets umask 022;
//   - allows only what a user of jails needs: the schroot front end, run,
//     shell and session (whose commands check schroot's access rules and
//     session ownership for the caller); --store and --config are refused,
//     so the configuration and store are always root's own.
//
// Everything else (bootstrap, image, gc, config) says to ask root.

// privileged is set once the process has taken over a setuid-root start.
var privileged struct {
	on       bool
	uid, gid int
}

// steeringEnv are variables a caller could use to point a setuid jailmgr
// at files of their own choosing.
var steeringEnv = []string{"JAILMGR_", "SUDO_"}

// takeSetuid turns a setuid-root start by another user into the model above.
// It returns an error only when it cannot become root as it should.
func takeSetuid() error {
	ruid, euid, _ := unix.Getresuid()
	if euid != 0 || ruid == 0 {
		return nil
	}
	rgid, _, _ := unix.Getresgid()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range steeringEnv {
			if strings.HasPrefix(name, p) {
				os.Unsetenv(name)
			}
		}
	}
	if err := unix.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("setuid start: set group ids: %w", err)
	}
	if err := unix.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("setuid start: set user ids: %w", err)
	}
	unix.Umask(0o022)
	os.Setenv("SUDO_UID", strconv.Itoa(ruid))
	os.Setenv("SUDO_GID", strconv.Itoa(rgid))
	privileged.on, privileged.uid, privileged.gid = true, ruid, rgid
	return nil
}

// allowedSetuid are the top-level commands a user may run through a setuid
// jailmgr.
var allowedSetuid = map[string]bool{"schroot": true, "run": true, "shell": true, "session": true, "jail": true, "doctor": true, "help": true, "--help": true, "-h": true, "--version": true}

// checkSetuidArgs refuses, for a setuid start, what only root may do.
func checkSetuidArgs(args []string) error {
	if !privileged.on {
		return nil
	}
	// The global flags come before the command; what follows it is the
	// command's own (schroot has a --config of its own).
	cmd := ""
	for _, a := range args {
		if a == "--store" || strings.HasPrefix(a, "--store=") || a == "--config" || strings.HasPrefix(a, "--config=") {
			return fmt.Errorf("%s is for root only: through a setuid jailmgr, the store and configuration are root's own", strings.SplitN(a, "=", 2)[0])
		}
		if !strings.HasPrefix(a, "-") || a == "--help" || a == "-h" || a == "--version" {
			cmd = a
			break
		}
	}
	if cmd != "" && !allowedSetuid[cmd] {
		u, _ := session.LookupUser(privileged.uid, privileged.gid)
		return fmt.Errorf("%s: %w: '%s' needs root (run it as root or with sudo); through a setuid jailmgr only run, shell, session, schroot, jail and doctor are open to users", u.Name, session.ErrDenied, cmd)
	}
	return nil
}
