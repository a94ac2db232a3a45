package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"jailmgr/session"
)

// The environment, command line and working directory of a command, as
// schroot 1.6 builds them (sbuild::auth and sbuild::session::run_child).

// schrootEnv is an environment as schroot's sbuild::environment keeps it:
// a map in which setting a variable first removes it, empty values and
// names the filter matches are then left out.
type schrootEnv struct {
	vars   map[string]string
	filter *regexp.Regexp
}

func newSchrootEnv(filter *regexp.Regexp) *schrootEnv {
	return &schrootEnv{vars: map[string]string{}, filter: filter}
}

func (e *schrootEnv) set(name, value string) {
	delete(e.vars, name)
	if name == "" || value == "" || (e.filter != nil && e.filter.MatchString(name)) {
		return
	}
	e.vars[name] = value
}

// list is the environment sorted by name, as schroot passes it.
func (e *schrootEnv) list() []string {
	out := make([]string, 0, len(e.vars))
	for _, k := range sortedKeys(e.vars) {
		out = append(out, k+"="+e.vars[k])
	}
	return out
}

// compileFilter compiles an environment-filter as the POSIX extended
// regular expression schroot takes it for, matched anywhere in a name.
func compileFilter(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.CompilePOSIX(expr)
	if err != nil {
		return nil, fmt.Errorf("environment filter %q: %w", expr, err)
	}
	return re, nil
}

// envInput is what an environment is built from.
type envInput struct {
	caller, target session.User
	// preserve keeps the caller's variables (-p, preserve-environment).
	preserve  bool
	filter    *regexp.Regexp
	callerEnv []string
}

// Default PATHs of schroot's minimal environment: root's, and everyone
// else's.
const (
	rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	userPath = "/usr/local/bin:/usr/bin:/bin"
)

// schrootEnvironment builds the environment a command starts with: the
// minimal one (PATH, HOME, LOGNAME, USER, TERM, SHELL of the target
// user), then with -p the caller's own variables over it — except PATH
// when the command runs as root, so that root never runs a caller's
// programs by accident. The filter removes what it matches throughout.
// (schroot's PAM session adds its modules' variables, which jailmgr,
// without PAM, does not.)
func schrootEnvironment(in envInput) *schrootEnv {
	env := newSchrootEnv(in.filter)
	path := userPath
	if in.target.UID == 0 {
		path = rootPath
	}
	home := in.target.Home
	if home == "" {
		home = "/"
	}
	shell := in.target.Shell
	if shell == "" {
		shell = "/bin/false"
	}
	env.set("PATH", path)
	env.set("HOME", home)
	env.set("LOGNAME", in.target.Name)
	env.set("USER", in.target.Name)
	env.set("TERM", getEnv(in.callerEnv, "TERM"))
	env.set("SHELL", shell)
	if in.preserve {
		for _, kv := range in.callerEnv {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				continue
			}
			if k == "PATH" && in.target.UID == 0 {
				continue
			}
			env.set(k, v)
		}
	}
	return env
}

// getEnv is a variable of an environment list, "" if unset.
func getEnv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// schrootCommand is what runs: the command line's command, or a shell;
// with the chroot's command-prefix before it.
type schrootCommand struct {
	command []string
	prefix  []string
	shell   string
	// login runs the shell as a login shell: argv[0] "-bash", as login
	// does, unless the environment is kept or a prefix runs it.
	login bool
}

// argv returns the argument vector, the program to run when argv[0] is
// not it (a login shell), and SCHROOT_COMMAND (the command without the
// prefix).
func (c schrootCommand) argv() ([]string, string, string) {
	cmd, program := c.command, ""
	if len(cmd) == 0 {
		cmd = []string{c.shell}
		if c.login {
			cmd, program = []string{"-" + filepath.Base(c.shell)}, c.shell
		}
	}
	commandString := strings.Join(cmd, " ")
	if len(c.prefix) > 0 {
		return append(slices.Clone(c.prefix), cmd...), "", commandString
	}
	return cmd, program, commandString
}

// schrootDirs are the working directories to try in order: -d alone if
// given; else the current directory, and for a login shell then $HOME,
// the user's home and / (schroot warns as it falls back). A command has
// no fallback: its directory missing in the chroot is an error.
func schrootDirs(wd, cwd, home, pwHome string, login bool) []string {
	if wd != "" {
		return []string{wd}
	}
	dirs := []string{cwd}
	if !login {
		return dirs
	}
	for _, d := range []string{home, pwHome, "/"} {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
