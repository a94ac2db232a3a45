package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"jailmgr/conf"
	"jailmgr/session"
	"jailmgr/session/cgroup"
	"jailmgr/store"
)

// resolveJail turns a jail name, alias or bare image reference into what
// session.Begin needs.
func (a *app) resolveJail(name, sessionName string, user session.User, asRoot bool) (*session.Spec, error) {
	if err := ensureStatic(); err != nil {
		return nil, err
	}
	c, err := conf.Load(a.configPath)
	if err != nil {
		return nil, err
	}
	jails, err := a.allJails(c)
	if err != nil {
		return nil, err
	}
	j, ok := conf.Lookup(jails, name)
	if !ok {
		_, _, errRef := store.ParseRef(name)
		if _, _, errTag := store.ParseTag(name); errRef != nil && errTag != nil {
			return nil, fmt.Errorf("no jail or image %q (see 'jailmgr jail list' and 'jailmgr image list')", name)
		}
		if privileged.on {
			return nil, fmt.Errorf("%w: no jail %q is configured, and through a setuid jailmgr only configured jails are open (see 'jailmgr jail list')", session.ErrDenied, name)
		}
		j = conf.DefaultJail(name)
		// A bare image is the caller's own: whoever may run jailmgr as
		// root may be root in it.
		j.Users, j.RootUsers = []string{user.Name}, []string{user.Name}
	}
	if err := session.CheckAccess(j, user, asRoot); err != nil {
		return nil, err
	}
	// Only now: a refused request writes nothing (Open makes the store).
	st, err := a.openStore(c)
	if err != nil {
		return nil, err
	}
	spec := &session.Spec{Jail: j, StoreDir: st.Dir, Name: sessionName, User: user, RunDir: runDir()}
	if j.Tarball != "" {
		return spec, nil // unpacked by Begin
	}
	if j.Image != "" {
		img, err := st.Locate(j.Image)
		if err != nil {
			if !ok {
				return nil, fmt.Errorf("no jail or image %q (see 'jailmgr jail list' and 'jailmgr image list')", name)
			}
			return nil, fmt.Errorf("jail %s: %w", j.Name, err)
		}
		// Until the session's overlay is mounted, nothing shows that the
		// version is in use: hold it so that rm and gc wait.
		release, err := st.Use(img)
		if err != nil {
			return nil, err
		}
		a.release = release
		spec.Lower, spec.ImageRef = img.RootFS(), img.Ref()
	} else {
		spec.Lower = j.Directory
	}
	return spec, nil
}

// runDir is where session state lives (JAILMGR_RUN_DIR for tests).
func runDir() string {
	if d := os.Getenv("JAILMGR_RUN_DIR"); d != "" {
		return d
	}
	return session.DefaultRunDir
}

func (a *app) runCmd() *cobra.Command {
	var userName, dir string
	var preserve int
	cmd := &cobra.Command{
		Use:   "run JAIL [-u USER] [-d DIR] [--preserve-fds N] -- COMMAND [ARG...]",
		Short: "Run a command in a throwaway session of a jail or image",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 || cmd.ArgsLenAtDash() != 1 {
				return usageError{fmt.Errorf("run takes a jail, then -- and a command (see 'jailmgr run --help')")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sigs := catchSignals(cmd.Context(), nil)
			defer sigs.stop()
			extra, err := preservedFiles(preserve)
			if err != nil {
				return err
			}
			user, err := session.Caller()
			if err != nil {
				return err
			}
			asRoot := userName == "root"
			if userName != "" && userName != "root" && userName != user.Name {
				return usageError{fmt.Errorf("-u %s: only your own user or root", userName)}
			}
			spec, err := a.resolveJail(args[0], "", user, asRoot)
			if err != nil {
				return err
			}
			return a.throwaway(sigs, spec, session.RunOptions{Argv: args[1:], Env: commandEnv(spec.Jail.Environment, user, asRoot), Dir: dir, Root: asRoot,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: extra})
		},
	}
	cmd.Flags().StringVarP(&userName, "user", "u", "", "run as USER (your own user, or root for root-users)")
	cmd.Flags().StringVarP(&dir, "directory", "d", "", "working directory inside the jail")
	preserveFlag(cmd, &preserve)
	return cmd
}

// begin begins a session on what resolveJail made of the jail.
func (a *app) begin(spec *session.Spec) (*session.State, error) {
	st, err := session.Begin(spec)
	if a.release != nil {
		a.release()
		a.release = nil
	}
	return st, err
}

// throwaway runs one command in an automatic session: begin, run, end.
// Told to stop (sigs) before the command has started, it ends the session
// and exits as the command would have, killed by that signal; from then
// on the command is told, and decides.
func (a *app) throwaway(sigs *clientSignals, spec *session.Spec, o session.RunOptions) error {
	if sig := sigs.first(); sig != 0 {
		if a.release != nil {
			a.release()
			a.release = nil
		}
		return exitCode(128 + int(sig))
	}
	spec.Automatic = true
	st, err := a.begin(spec)
	if err != nil {
		return err
	}
	if sig := sigs.first(); sig != 0 {
		if err := session.EndState(st); err != nil {
			return err
		}
		return exitCode(128 + int(sig))
	}
	// A signal from here on reaches the command, once it has started.
	o.Signals = sigs.forward()
	// A monitor costs a process start, more than a short command takes:
	// it is started only for a command still running after watchDelay, to
	// clean up if this process is killed. Before then, the init dies with
	// this process and 'session recover' removes what is left.
	watch := time.AfterFunc(watchDelay, func() { session.Watch(st) })
	code, runErr := session.Run(st, o)
	watch.Stop()
	if err := session.EndState(st); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return runErr
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// watchDelay is how long a command of 'jailmgr run' runs before a monitor
// is started for its session.
const watchDelay = 100 * time.Millisecond

// exitCode passes a command's exit status through as jailmgr's own.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("command exited with status %d", int(e)) }

// commandEnv is the environment of a command in a jail: a clean minimal
// one, or the caller's with environment = preserve.
func commandEnv(environment string, u session.User, asRoot bool) []string {
	home, name := u.Home, u.Name
	path := "/usr/local/bin:/usr/bin:/bin"
	if asRoot {
		home, name, path = "/root", "root", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{"PATH=" + path, "HOME=" + home, "USER=" + name, "LOGNAME=" + name, "SHELL=/bin/sh"}
	if t := callerGetenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	if environment == "preserve" {
		for _, e := range callerEnv() {
			k, _, _ := strings.Cut(e, "=")
			if k == "PATH" || k == "HOME" || k == "USER" || k == "LOGNAME" || strings.HasPrefix(k, "LD_") || k == "IFS" || k == "BASH_ENV" || k == "ENV" {
				continue
			}
			env = append(env, e)
		}
	}
	return env
}

func (a *app) sessionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "session", Short: "Begin, use, list, end and recover long-lived sessions"}
	var name, userName string
	begin := &cobra.Command{
		Use:   "begin JAIL [-n NAME]",
		Short: "Open a session and print its id",
		Args:  exactArgs(1, "one jail or image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := session.Caller()
			if err != nil {
				return err
			}
			spec, err := a.resolveJail(args[0], name, user, userName == "root")
			if err != nil {
				return err
			}
			st, err := a.begin(spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, st.ID)
			return nil
		},
	}
	begin.Flags().StringVarP(&name, "name", "n", "", "session id (default: JAIL-random)")
	begin.Flags().StringVarP(&userName, "user", "u", "", "check access for root (root-users)")
	var runUser, runDirFlag string
	var runPreserve int
	run := &cobra.Command{
		Use:   "run ID [-u root] [-d DIR] [--preserve-fds N] -- COMMAND [ARG...]",
		Short: "Run a command in an open session",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 || cmd.ArgsLenAtDash() != 1 {
				return usageError{fmt.Errorf("session run takes a session id, then -- and a command")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sigs := catchSignals(cmd.Context(), nil)
			defer sigs.stop()
			extra, err := preservedFiles(runPreserve)
			if err != nil {
				return err
			}
			st, user, err := a.ownSession(args[0])
			if err != nil {
				return err
			}
			asRoot := runUser == "root"
			if asRoot && !st.RootAllowed && user.UID != 0 {
				return fmt.Errorf("%w: %s may not be root in session %s (root-users, root-groups)", session.ErrDenied, user.Name, st.ID)
			}
			if runUser != "" && !asRoot {
				return usageError{fmt.Errorf("-u %s: only root can be asked for", runUser)}
			}
			// Told to stop before the command started: it does not start.
			if sig := sigs.first(); sig != 0 {
				return exitCode(128 + int(sig))
			}
			code, err := session.Run(st, session.RunOptions{Argv: args[1:], Env: commandEnv(st.Environment, user, asRoot), Dir: runDirFlag, Root: asRoot,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: extra, Signals: sigs.forward()})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	run.Flags().StringVarP(&runUser, "user", "u", "", "root to run as root (root-users only)")
	run.Flags().StringVarP(&runDirFlag, "directory", "d", "", "working directory inside the jail")
	preserveFlag(run, &runPreserve)
	end := &cobra.Command{
		Use:   "end ID",
		Short: "End a session: kill its processes, unmount, remove its state",
		Args:  exactArgs(1, "one session id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := a.ownSession(args[0])
			var d *session.DamagedError
			if errors.As(err, &d) && callerIsRoot() {
				// Whose it was cannot be told: root's to clean.
				return session.EndDamaged(runDir(), args[0])
			}
			if err != nil {
				return err
			}
			return session.EndState(st)
		},
	}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List open sessions with their usage",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			states, err := a.visibleSessions()
			if err != nil {
				return err
			}
			rows := []sessionRow{}
			for _, st := range states {
				rows = append(rows, describe(st))
			}
			if listJSON {
				return writeJSON(a, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tJAIL\tUSER\tIMAGE\tSINCE\tPROCESSES\tMEMORY\tSTATE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Jail, r.User, dash(r.Image), r.Created.Local().Format("2006-01-02 15:04:05"), r.Processes, humanSize(r.Memory), r.State)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	info := &cobra.Command{
		Use:   "info ID",
		Short: "Show a session, with the path of its root on the host",
		Args:  exactArgs(1, "one session id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := a.ownSession(args[0])
			if err != nil {
				return err
			}
			return writeJSON(a, describe(st))
		},
	}
	// Its output is JSON already; the flag is there for the scripts that
	// pass it to every command.
	info.Flags().Bool("json", true, "print JSON (the default)")
	recover := &cobra.Command{
		Use:   "recover",
		Short: "Clean up sessions whose init is gone (after a crash or reboot)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var mine func(*session.State) bool // root: every session
			if !callerIsRoot() {
				user, err := session.Caller()
				if err != nil {
					return err
				}
				mine = func(st *session.State) bool { return st.UID == user.UID }
			}
			ids, err := session.Recover(runDir(), mine)
			for _, id := range ids {
				fmt.Fprintf(a.stdout, "recovered %s\n", id)
			}
			return err
		},
	}
	cmd.AddCommand(begin, run, end, list, info, recover)
	return cmd
}

// ownSession finds a session the caller may use (root, or its owner), and
// the caller. To anyone else another user's session does not exist: the
// answer is the one for an id that names no session, and says nothing of
// its owner, jail or root. (Ids themselves are no secret: they show in
// the process list.)
func (a *app) ownSession(id string) (*session.State, session.User, error) {
	user, err := session.Caller()
	if err != nil {
		return nil, session.User{}, err
	}
	st, err := session.Get(runDir(), id)
	var d *session.DamagedError
	if errors.As(err, &d) && !callerIsRoot() {
		return nil, session.User{}, fmt.Errorf("%w: %s (see 'jailmgr session list')", session.ErrNoSession, id)
	}
	if err != nil {
		return nil, session.User{}, err
	}
	if !callerIsRoot() && user.UID != st.UID {
		return nil, session.User{}, fmt.Errorf("%w: %s (see 'jailmgr session list')", session.ErrNoSession, id)
	}
	return st, user, nil
}

// visibleSessions are the sessions the caller may see: every one for
// root, else the caller's own. Damaged ones are reported to root on
// stderr and do not stop the list.
func (a *app) visibleSessions() ([]*session.State, error) {
	states, err := session.List(runDir())
	if err != nil && !session.OnlyDamaged(err) {
		return nil, err
	}
	if callerIsRoot() {
		if err != nil {
			fmt.Fprintf(a.stderr, "jailmgr: warning: %s\n", printable(err.Error()))
		}
		return states, nil
	}
	user, err := session.Caller()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(states, func(st *session.State) bool { return st.UID != user.UID }), nil
}

// sessionRow is one line of 'session list --json' and 'session info'.
type sessionRow struct {
	ID        string    `json:"id"`
	Jail      string    `json:"jail"`
	User      string    `json:"user"`
	Image     string    `json:"image,omitempty"`
	Directory string    `json:"directory,omitempty"`
	Type      string    `json:"type"`
	Root      string    `json:"root"`
	Created   time.Time `json:"created"`
	State     string    `json:"state"`
	Processes int       `json:"processes"`
	Memory    int64     `json:"memory"`
	CPUTime   float64   `json:"cpu_seconds"`
}

func describe(st *session.State) sessionRow {
	r := sessionRow{ID: st.ID, Jail: st.Jail, User: st.User, Image: st.Image, Directory: st.Directory, Type: st.Type,
		Root: st.Root, Created: st.Created, State: "running"}
	if !st.Alive() {
		r.State = "dead (run 'jailmgr session recover')"
	}
	if g, err := cgroup.Open(st.Cgroup); err == nil {
		if u, err := g.Usage(); err == nil {
			r.Memory, r.CPUTime = u.MemoryBytes, u.CPUTime.Seconds()
		}
		if procs, err := g.Procs(); err == nil {
			r.Processes = len(procs)
		}
	}
	return r
}
