package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"

	"jailmgr/conf"
	"jailmgr/session"
)

// schroot's session actions over jailmgr's sessions:
//
//	-b            session.Begin of the chroot (a union chroot as an
//	              ephemeral overlay, its source chroot and plain chroots
//	              writing to the directory, a file chroot unpacked), printing
//	              the session's name
//	-r            session.RunWait in the session
//	-e            session.End
//	--recover-session
//	              nothing for a live session; for one whose init is gone,
//	              what is left is torn down and the session begun again
//	              under its name (its changes are lost)
//	(default)     begin, run, end
//
// Plain chroots have no sessions in schroot: -b prints the chroot's name,
// -e does nothing, and commands run in a throwaway jailmgr session.

// sessions runs the session action on each selected chroot in turn, as
// schroot does; the exit status is the last command's.
func (s *schroot) sessions(names []string, chroots map[string]selection) int {
	caller, err := session.Caller()
	if err != nil {
		s.fail(err.Error(), "")
		return 1
	}
	target := caller
	if s.o.user != "" && s.o.user != caller.Name {
		if target, err = session.LookupUserName(s.o.user); err != nil {
			s.fail(fmt.Sprintf("User ‘%s’ not found", s.o.user), "")
			return 1
		}
	}
	// Signals are caught for the whole action, so that a begun session is
	// always ended or left whole. One that comes before the command has
	// started stops the action there; from then on session.Run passes
	// each to the command. SIGTERM and SIGHUP are schroot's own: it says
	// so, and exits 1 whatever the command does. SIGINT and SIGQUIT only
	// go to the command, as the terminal sends them to schroot's.
	caught := &caughtSignals{}
	caught.client = catchSignals(s.a.ctx, func(sig syscall.Signal) {
		if sig != syscall.SIGTERM && sig != syscall.SIGHUP {
			return
		}
		if caught.add(sig) {
			s.fail(fmt.Sprintf("Caught signal ‘%s’: terminating immediately", signalName(sig)), "")
		}
	})
	defer caught.client.stop()
	status := 0
	for _, n := range names {
		sel := chroots[n]
		code, err := s.session(n, sel, caller, target, caught)
		if err != nil {
			if !s.o.quiet {
				s.failErr(err)
			}
			if code == 0 {
				code = 1
			}
			return code
		}
		status = code
		if caught.any() {
			return 1
		}
	}
	return status
}

// caughtSignals records SIGTERM and SIGHUP received during an action;
// client catches every signal that stops it.
type caughtSignals struct {
	mu     sync.Mutex
	sigs   []syscall.Signal
	client *clientSignals
}

func (c *caughtSignals) add(sig syscall.Signal) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := len(c.sigs) == 0
	c.sigs = append(c.sigs, sig)
	return first
}

func (c *caughtSignals) any() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sigs) > 0
}

func (c *caughtSignals) first() syscall.Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sigs) == 0 {
		return 0
	}
	return c.sigs[0]
}

// stopped is schroot's error for a signal caught before the command
// started, nil when none was.
func (c *caughtSignals) stopped() error {
	if sig := c.client.first(); sig != 0 {
		return fmt.Errorf("Caught signal ‘%s’", signalName(sig))
	}
	return nil
}

// signalName is a signal as C's strsignal names it ("Terminated").
func signalName(sig syscall.Signal) string {
	t := sig.String()
	if t == "" {
		return t
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// errNotAuthorised is schroot's refusal.
var errNotAuthorised = &conf.SchrootError{What: "Access not authorised", Reason: "You do not have permission to access the schroot service."}

// authorise applies schroot's rules (session::get_chroot_auth_status)
// without PAM: a user listed in users, groups, root-users or root-groups
// may run as themselves; root-users and root-groups may run as root; root
// may do anything. Switching to another user, which schroot would ask a
// password for, is refused.
func authorise(c *conf.Chroot, caller, target session.User) error {
	member := func(groups []string) bool {
		for _, g := range caller.GroupNames {
			if slices.Contains(groups, g) {
				return true
			}
		}
		return false
	}
	inUsers := slices.Contains(c.Users, caller.Name) || member(c.Groups)
	inRoot := inRootLists(c, caller)
	switch {
	case (inUsers || inRoot) && caller.UID == target.UID:
	case inRoot && target.UID == 0:
	case caller.UID == 0:
	default:
		return errNotAuthorised
	}
	return nil
}

// inRootLists tells whether a user is in a chroot's root-users or
// root-groups: schroot then makes the user a root user of its sessions.
func inRootLists(c *conf.Chroot, u session.User) bool {
	if slices.Contains(c.RootUsers, u.Name) {
		return true
	}
	for _, g := range u.GroupNames {
		if slices.Contains(c.RootGroups, g) {
			return true
		}
	}
	return false
}

// session runs the action on one chroot or session, selected as name.
func (s *schroot) session(name string, sel selection, caller, target session.User, caught *caughtSignals) (int, error) {
	ch := sel.ch
	if err := authorise(ch, caller, target); err != nil {
		return 1, err
	}
	if err := s.checkUserOptions(ch, caller, target); err != nil {
		return 1, err
	}
	action := s.o.action
	switch {
	case ch.Session != nil:
		st, err := session.Get(runDir(), ch.Name)
		if err != nil {
			return 1, err
		}
		// Read again by name: the one listed may have ended, and its name
		// gone to another user's session, since.
		if !callerIsRoot() && st.UID != caller.UID {
			return 1, fmt.Errorf("%s: Chroot not found", name)
		}
		switch action {
		case actionRun:
			return s.run(st, ch, caller, target, caught)
		case actionEnd:
			if err := session.EndState(st); err != nil {
				return 1, fmt.Errorf("%s: Chroot setup failed: %w", st.ID, err)
			}
			return 0, nil
		case actionRecover:
			return s.recover(st, caller)
		}
		return 1, fmt.Errorf("%s: Chroot not found", name)
	case ch.SessionClonable():
		if action != actionAuto && action != actionBegin {
			return 1, fmt.Errorf("%s: Chroot not found", name)
		}
		id := s.o.sessionName
		if id == "" {
			id = ch.Name + "-" + uuid()
		}
		if err := caught.stopped(); err != nil {
			return 1, err
		}
		st, err := s.begin(sel, name, id, caller)
		if err != nil {
			return 1, err
		}
		if action == actionBegin {
			// Stopped while it began, the session is not handed out: a
			// caller that sees the failure would never end it.
			if err := caught.stopped(); err != nil {
				if endErr := session.EndState(st); endErr != nil {
					err = errors.Join(err, fmt.Errorf("%s: Chroot setup failed: %w", st.ID, endErr))
				}
				return 1, err
			}
			fmt.Fprintln(s.stdout, st.ID)
			return 0, nil
		}
		sch := ch.CloneSession(st.ID, name, caller.Name, inRootLists(ch, caller), st.Root)
		code, runErr := s.run(st, sch, caller, target, caught)
		if err := session.EndState(st); err != nil && runErr == nil {
			return 1, fmt.Errorf("%s: Chroot setup failed: %w", st.ID, err)
		}
		return code, runErr
	default: // a plain chroot: no session of its own
		switch action {
		case actionBegin:
			fmt.Fprintln(s.stdout, ch.Name)
			return 0, nil
		case actionEnd, actionRecover:
			return 0, nil
		}
		if err := caught.stopped(); err != nil {
			return 1, err
		}
		st, err := s.begin(sel, name, ch.Name+"-"+uuid(), caller)
		if err != nil {
			return 1, err
		}
		code, runErr := s.run(st, ch, caller, target, caught)
		if err := session.EndState(st); err != nil && runErr == nil {
			return 1, fmt.Errorf("%s: Chroot setup failed: %w", st.ID, err)
		}
		return code, runErr
	}
}

// checkUserOptions applies schroot's rule for -o KEY=VALUE: only keys the
// chroot lists in user-modifiable-keys (or root-modifiable-keys, for root)
// may be set. The values feed schroot's setup scripts, which jailmgr does
// not run, so nothing else comes of them.
func (s *schroot) checkUserOptions(ch *conf.Chroot, caller, target session.User) error {
	root := caller.UID == 0 || target.UID == 0
	for _, kv := range s.o.options {
		key, _, _ := strings.Cut(kv, "=")
		allowed := slices.Contains(ch.UserModifiableKeys, key) || (root && slices.Contains(ch.RootModifiableKeys, key))
		if !allowed {
			reason := "The key is not present in user-modifiable-keys"
			if root {
				reason = "The key is not present in user-modifiable-keys or root-modifiable-keys"
			}
			return &conf.SchrootError{What: fmt.Sprintf("Configuration key ‘%s’ is not permitted to be modified.", key), Reason: reason}
		}
	}
	return nil
}

// begin opens a jailmgr session of a chroot, labelled with where it came
// from so that --info can show it as schroot would.
func (s *schroot) begin(sel selection, alias, id string, owner session.User) (*session.State, error) {
	spec, err := s.spec(sel, id, owner)
	if err != nil {
		return nil, fmt.Errorf("%s: Chroot setup failed: %w", id, err)
	}
	spec.Labels = map[string]string{labelNamespace: sel.ns, labelChroot: sel.ch.Name, labelAlias: alias,
		labelRootUser: yesNo(inRootLists(sel.ch, owner))}
	st, err := s.a.begin(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: Chroot setup failed: %w", id, err)
	}
	return st, nil
}

// spec is what session.Begin needs for a chroot: jailmgr's own jails as
// 'jailmgr session begin' opens them, schroot's as their jail.
func (s *schroot) spec(sel selection, id string, owner session.User) (*session.Spec, error) {
	if j := sel.ch.Jail; j != nil {
		// authorise has applied schroot's rules, which jailmgr's own
		// check (for the owner, not as root) repeats.
		return s.a.resolveJail(j.Name, id, owner, false)
	}
	if err := ensureStatic(); err != nil {
		return nil, err
	}
	j, warns, err := s.sc.Jail(sel.ch)
	for _, w := range warns {
		s.warn(w.Error(), w.Reason)
	}
	if err != nil {
		return nil, err
	}
	st, err := s.a.openStore(s.jcfg)
	if err != nil {
		return nil, err
	}
	return &session.Spec{Jail: j, Lower: j.Directory, StoreDir: st.Dir, RunDir: runDir(), Name: id, User: owner}, nil
}

// recover makes a session usable again: a live one is left alone; one
// whose init is gone is cleaned up and begun again, empty, under its name.
func (s *schroot) recover(st *session.State, caller session.User) (int, error) {
	dead, err := session.RecoverSession(runDir(), st.ID)
	if err != nil || !dead {
		return 0, err
	}
	ns, name, alias := st.Labels[labelNamespace], st.Labels[labelChroot], st.Labels[labelAlias]
	if name == "" {
		ns, name, alias = "chroot", st.Jail, st.Jail
	}
	fns, ch, ok := s.sc.Find(ns, ns+":"+name)
	if !ok {
		return 1, fmt.Errorf("%s: its chroot %s:%s is no longer defined; the session was cleaned up", st.ID, ns, name)
	}
	owner, err := session.LookupUser(st.UID, st.GID)
	if err != nil {
		return 1, err
	}
	if _, err := s.begin(selection{ns: fns, ch: ch}, alias, st.ID, owner); err != nil {
		return 1, err
	}
	if !s.o.quiet {
		s.warn(fmt.Sprintf("%s: the session's init was gone; it was begun again and its changes are lost", st.ID), "")
	}
	return 0, nil
}

// run runs the command line's command (or a login shell) in a session,
// as schroot's session::run_child sets it up.
func (s *schroot) run(st *session.State, ch *conf.Chroot, caller, target session.User, caught *caughtSignals) (int, error) {
	preserve := s.o.preserve || ch.PreserveEnvironment
	filter, err := compileFilter(ch.EnvironmentFilter)
	if err != nil {
		return 1, err
	}
	cmd := schrootCommand{command: s.o.command, prefix: ch.CommandPrefix}
	env := schrootEnvironment(envInput{caller: caller, target: target, preserve: preserve, filter: filter, callerEnv: callerEnv()})
	if len(cmd.command) == 0 {
		shell := s.loginShell(st, ch, target, preserve)
		cmd.shell = shell
		cmd.login = !preserve && len(ch.CommandPrefix) == 0
		env.set("SHELL", shell)
	}
	argv, program, commandString := cmd.argv()
	sessionID, original, selected := ch.Name, ch.Name, ch.Name
	if ch.Session != nil {
		original, selected = ch.Session.OriginalName, ch.Session.SelectedName
	}
	for _, kv := range [][2]string{
		{"SCHROOT_COMMAND", commandString}, {"SCHROOT_USER", caller.Name}, {"SCHROOT_GROUP", caller.PrimaryGroup},
		{"SCHROOT_UID", fmt.Sprint(caller.UID)}, {"SCHROOT_GID", fmt.Sprint(caller.GID)},
		{"SCHROOT_CHROOT_NAME", original}, {"SCHROOT_ALIAS_NAME", selected}, {"SCHROOT_SESSION_ID", sessionID},
	} {
		env.set(kv[0], kv[1])
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	dirs := schrootDirs(s.o.directory, cwd, env.vars["HOME"], target.Home, len(cmd.command) == 0)
	if s.verbosity(ch) == "verbose" {
		what := "Running command: “" + commandString + "”"
		if len(cmd.command) == 0 {
			what = "Running login shell: ‘" + cmd.shell + "’"
			if !cmd.login {
				what = "Running shell: ‘" + cmd.shell + "’"
			}
		}
		if caller.UID != target.UID {
			what = fmt.Sprintf("(%s→%s) %s", caller.Name, target.Name, what)
		}
		s.inform(fmt.Sprintf("[%s chroot] %s", ch.Name, what), "")
	}
	o := session.RunOptions{Argv: argv, Program: program, Env: env.list(), Dir: dirs[0], Dirs: dirs[1:], Notes: &schrootNotes,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	switch {
	case target.UID == 0:
		o.Root = true
	case target.UID != st.UID:
		o.User = &target
	}
	// Pass the caller's stdio straight to the command, as schroot does;
	// only a full terminal gets a terminal of the jail's own, so that job
	// control and /dev/tty work inside.
	o.Pty = term.IsTerminal(0) && term.IsTerminal(1) && term.IsTerminal(2)
	// Told to stop while the session began (or before): the command does
	// not start, and an automatic session is ended by the caller.
	if err := caught.stopped(); err != nil {
		return 1, err
	}
	o.Signals = caught.client.forward()
	exit, err := session.RunWait(st, o)
	if err != nil {
		return 1, err
	}
	if sig := caught.first(); sig != 0 {
		return 1, fmt.Errorf("Caught signal ‘%s’", signalName(sig))
	}
	if exit.Signal != 0 {
		return 1, fmt.Errorf("Child terminated by signal ‘%s’", signalName(exit.Signal))
	}
	return exit.Code, nil
}

// schrootNotes word a command's start-up failures as schroot's
// run_child does, with its exit status.
var schrootNotes = session.ExecNotes{
	DirSkipped:  "W: Failed to change to directory ‘%s’: %s\nI: The directory does not exist inside the chroot.  Use the --directory option to run the command in a different directory.",
	DirFallback: "W: Falling back to directory ‘%s’",
	DirFailed:   "E: Failed to change to directory ‘%s’: %s\nI: The directory does not exist inside the chroot.  Use the --directory option to run the command in a different directory.",
	ExecFailed:  "E: Failed to execute “%s”: %s",
	Status:      1,
}

// verbosity is the chroot's message verbosity unless -q or -v say.
func (s *schroot) verbosity(ch *conf.Chroot) string {
	switch {
	case s.o.verbose:
		return "verbose"
	case s.o.quiet:
		return "quiet"
	}
	return ch.Verbosity
}

// loginShell picks the shell as schroot's get_shell does: --shell, the
// chroot's shell, else $SHELL (with -p), the user's, /bin/bash, /bin/sh —
// the first that exists in the session's root, with warnings for those
// that do not.
func (s *schroot) loginShell(st *session.State, ch *conf.Chroot, target session.User, preserve bool) string {
	var shells []string
	switch {
	case s.o.shell != "":
		shells = []string{s.o.shell}
	case ch.Shell != "":
		shells = []string{ch.Shell}
	default:
		if preserve {
			if sh := callerGetenv("SHELL"); sh != "" {
				shells = append(shells, sh)
			}
		}
		if target.Shell != "" {
			shells = append(shells, target.Shell)
		}
		for _, sh := range []string{"/bin/bash", "/bin/sh"} {
			if !slices.Contains(shells, sh) {
				shells = append(shells, sh)
			}
		}
	}
	root, err := os.OpenRoot(st.Root)
	if err == nil {
		defer root.Close()
	}
	shell := shells[0]
	for _, sh := range shells {
		shell = sh
		if root == nil {
			break
		}
		if _, err := root.Stat(strings.TrimPrefix(filepath.Clean(sh), "/")); err == nil {
			break
		} else {
			s.warn(fmt.Sprintf("Shell ‘%s’ not available: %s: Failed to stat file: %s", sh, sh, session.Strerror(err)), "")
		}
	}
	if shell != shells[0] {
		s.warn(fmt.Sprintf("Falling back to shell ‘%s’", shell), "")
	}
	return shell
}

// uuid is a random (version 4) UUID, as schroot names its sessions.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
