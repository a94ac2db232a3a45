package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"jailmgr/conf"
	"jailmgr/session"
	"jailmgr/store"
)

// The schroot front end: schroot 1.6's command line, options, output and
// exit statuses, over jailmgr's sessions. It runs as 'jailmgr schroot
// ARGS…' and when the binary is called schroot. The chroots are those of
// /etc/schroot (JAILMGR_SCHROOT_DIR) and jailmgr's own jails; the sessions
// are jailmgr's. Configuration comes from the environment (JAILMGR_CONFIG,
// JAILMGR_STORE, JAILMGR_RUN_DIR), as schroot has no flags for it.

// schrootCmd is 'jailmgr schroot': the rest of the line is schroot's.
func (a *app) schrootCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schroot [OPTION…] [COMMAND]",
		Short: "Run schroot's command line (schroot 1.6) on jailmgr's sessions",
		Long: `Run schroot's command line on jailmgr's sessions: the same options, output
and exit statuses as schroot 1.6, for the chroots of /etc/schroot and
jailmgr's own jails. Installed (or linked) as "schroot", jailmgr behaves the
same. See 'jailmgr schroot --help' for schroot's options.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := a.runSchroot("jailmgr schroot", args); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}

// schrootDir is where schroot's configuration is read from.
func schrootDir() string {
	if d := os.Getenv("JAILMGR_SCHROOT_DIR"); d != "" {
		return d
	}
	return defaultSchrootDir
}

// defaultSchrootDir is a var so that a build can bake another schroot
// folder in (make install SCHROOTDIR=..., -X main.defaultSchrootDir=...).
var defaultSchrootDir = conf.SchrootDir

// schroot is one run of the schroot front end.
type schroot struct {
	a      *app
	prog   string
	o      *schrootOptions
	sc     *conf.SchrootConfig
	jcfg   *conf.Config
	stdout io.Writer
	stderr io.Writer
}

// warn, fail and inform print schroot's message lines.
func (s *schroot) warn(msg, reason string)   { s.message("W", msg, reason) }
func (s *schroot) fail(msg, reason string)   { s.message("E", msg, reason) }
func (s *schroot) inform(msg, reason string) { s.message("I", msg, reason) }

func (s *schroot) message(kind, msg, reason string) {
	fmt.Fprintf(s.stderr, "%s: %s\n", kind, printable(msg))
	for _, l := range strings.Split(strings.TrimRight(printable(reason), "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(s.stderr, "I: %s\n", l)
		}
	}
}

// failErr prints an error, each of a joined list on its own line.
func (s *schroot) failErr(err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			s.failErr(e)
		}
		return
	}
	var se *conf.SchrootError
	if errors.As(err, &se) {
		s.fail(se.Error(), se.Reason)
		return
	}
	s.fail(err.Error(), "")
}

// runSchroot runs one schroot command line and returns its exit status.
func (a *app) runSchroot(prog string, args []string) int {
	s := &schroot{a: a, prog: prog, stdout: a.stdout, stderr: a.stderr}
	o, err := parseSchrootArgs(args)
	if err != nil {
		s.fail(err.Error(), "")
		var ue schrootUsageError
		if errors.As(err, &ue) {
			s.inform(fmt.Sprintf("Run “%s --help” to list usage example and all available options", prog), "")
		}
		return 1
	}
	s.o = o
	for _, w := range o.warnings {
		s.warn(w[0], w[1])
	}
	switch o.action {
	case actionHelp:
		fmt.Fprint(s.stdout, schrootHelp("schroot"))
		return 0
	case actionVersion:
		fmt.Fprint(s.stdout, schrootVersion())
		return 0
	}
	if err := s.load(); err != nil {
		s.failErr(err)
		return 1
	}
	names, chroots, err := s.selected()
	if err != nil {
		s.failErr(err)
		return 1
	}
	if len(names) == 0 {
		if !o.allUsed() {
			s.fail(fmt.Sprintf("The specified chroots are not defined in ‘%s/schroot.conf’", s.sc.Dir), "")
			return 1
		}
		return 0
	}
	switch o.action {
	case actionList:
		for _, n := range names {
			fmt.Fprintln(s.stdout, n)
		}
		return 0
	case actionInfo:
		for i, n := range names {
			if i > 0 {
				fmt.Fprintln(s.stdout)
			}
			writeDetails(s.stdout, chroots[n].ch)
		}
		return 0
	case actionLocation:
		for _, n := range names {
			fmt.Fprintln(s.stdout, chroots[n].ch.Path())
		}
		return 0
	case actionConfig:
		var list []*conf.Chroot
		for _, n := range names {
			list = append(list, chroots[n].ch)
		}
		writeConfig(s.stdout, list, s.a.now())
		return 0
	}
	return s.sessions(names, chroots)
}

// load reads schroot's configuration and jailmgr's, and the sessions when
// the action needs them.
func (s *schroot) load() error {
	sc, err := conf.LoadSchroot(s.a.schrootDir)
	if sc != nil {
		for _, w := range sc.Warnings {
			s.warn(w.Error(), w.Reason)
		}
		sc.Warnings = nil
	}
	if err != nil {
		return err
	}
	s.sc = sc
	jc, err := conf.Load(s.a.configPath)
	if err != nil {
		return err
	}
	s.jcfg = jc
	jails, err := jc.Jails(nil)
	if err != nil {
		return err
	}
	if err := addJailChroots(sc, jails, s.a.imageRoot(jc)); err != nil {
		return err
	}
	if s.o.loadChroots && len(sc.Names("chroot")) == 0 && !s.o.quiet {
		s.warn(fmt.Sprintf("No chroots are defined in ‘%s/schroot.conf’ or ‘%s/chroot.d’", sc.Dir, sc.Dir), "")
	}
	if s.o.loadSessions {
		// A user's own sessions only, as in every session command.
		states, err := s.a.visibleSessions()
		if err != nil {
			return err
		}
		for _, st := range states {
			// A session whose name a plain chroot already answers to is
			// unreachable here, as it would be in schroot.
			sc.Add("session", sessionChroot(sc, st))
		}
	}
	return nil
}

// addJailChroots makes jailmgr's own jails chroots too, in the order they
// are written; a name schroot's configuration has taken is an error.
func addJailChroots(sc *conf.SchrootConfig, jails map[string]*conf.Jail, imageRoot func(string) string) error {
	names := make([]string, 0, len(jails))
	for n := range jails {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		j := jails[n]
		if prev, ok := sc.Chroots[n]; ok {
			errs = append(errs, &conf.Error{File: j.File, Line: j.Line,
				What: fmt.Sprintf("jail %q is also a schroot chroot (%s:%d); rename one", n, prev.File, prev.Line)})
			continue
		}
		root := ""
		if j.Image != "" {
			root = imageRoot(j.Image)
		}
		if err := sc.Add("chroot", conf.ChrootOfJail(j, root)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// imageRoot finds the root folder of an image reference for --info, or ""
// when the store cannot say (not there, not readable).
func (a *app) imageRoot(c *conf.Config) func(string) string {
	var (
		st     *store.Store
		err    error
		opened bool
	)
	return func(ref string) string {
		if !opened {
			st, err = a.openStore(c) // once, however many image jails
			opened = true
		}
		if err != nil {
			return ""
		}
		img, err := st.Locate(ref)
		if err != nil {
			return ""
		}
		return img.RootFS()
	}
}

// selection is a chroot chosen on the command line, by the name given.
type selection struct {
	ns string
	ch *conf.Chroot
}

// selected is schroot's get_chroot_options: the names to act on, and what
// each names. With --all* the names are namespaced (and include aliases
// for --list unless --exclude-aliases); otherwise they are as given,
// looked up in the session namespace for -r, -e and --recover-session and
// in the chroot namespace else.
func (s *schroot) selected() ([]string, map[string]selection, error) {
	o := s.o
	var names []string
	hint := ""
	if o.allUsed() {
		add := func(on bool, ns string) {
			if !on {
				return
			}
			if o.action == actionList && !o.excludeAliases {
				names = append(names, s.sc.AliasNames(ns)...)
			} else {
				names = append(names, s.sc.Names(ns)...)
			}
		}
		add(o.allChroots, "chroot")
		add(o.allSessions, "session")
		add(o.allSources, "source")
	} else {
		names = o.chroots
		hint = "chroot"
		if o.action == actionRecover || o.action == actionRun || o.action == actionEnd {
			hint = "session"
		}
	}
	out := map[string]selection{}
	var missing []string
	var hidden func(*conf.Chroot) bool
	if privileged.on {
		// Through a setuid jailmgr, a user sees the chroots they may
		// use, not the whole configuration (which root may keep
		// unreadable): the others do not exist for them.
		caller, err := session.Caller()
		if err != nil {
			return nil, nil, err
		}
		hidden = func(ch *conf.Chroot) bool { return authorise(ch, caller, caller) != nil }
	}
	if hidden != nil && o.allUsed() {
		names = slices.DeleteFunc(names, func(n string) bool {
			_, ch, ok := s.sc.Find(hint, n)
			return ok && hidden(ch)
		})
	}
	for _, n := range names {
		ns, ch, ok := s.sc.Find(hint, n)
		if ok && hidden != nil && hidden(ch) {
			ok = false
		}
		if ok && (ns != "session" || o.loadSessions) && (ns == "session" || o.loadChroots) {
			out[n] = selection{ns: ns, ch: ch}
		} else if !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	switch len(missing) {
	case 0:
		return names, out, nil
	case 1:
		return nil, nil, fmt.Errorf("%s: Chroot not found", missing[0])
	}
	return nil, nil, fmt.Errorf("%s: Chroots not found", strings.Join(missing, ", "))
}

// sessionChroot is how a jailmgr session looks to schroot clients: the
// session schroot would have cloned from the chroot it was begun from, its
// root where jailmgr mounted it. Sessions begun by jailmgr's own commands
// look like sessions of their jail.
func sessionChroot(sc *conf.SchrootConfig, st *session.State) *conf.Chroot {
	ns, name, alias := st.Labels[labelNamespace], st.Labels[labelChroot], st.Labels[labelAlias]
	if name == "" {
		ns, name, alias = "chroot", st.Jail, st.Jail
	}
	var base *conf.Chroot
	if fns, ch, ok := sc.Find(ns, ns+":"+name); ok && fns == ns {
		base = ch
	} else {
		base = &conf.Chroot{Name: name, Type: "directory", Directory: st.Directory, EnvironmentFilter: conf.DefaultEnvironmentFilter,
			Verbosity: "normal", Personality: "undefined", UserData: map[string]string{}, UnionType: "none",
			UnionOverlayDirectory: conf.DefaultUnionOverlayDirectory, UnionUnderlayDirectory: conf.DefaultUnionUnderlayDirectory}
		if st.Type == "ephemeral" {
			base.UnionType = "overlay"
		}
	}
	root := st.RootAllowed
	if v, ok := st.Labels[labelRootUser]; ok {
		root = v == "true"
	}
	ch := base.CloneSession(st.ID, alias, st.User, root, st.Root)
	if ch.UnionConfigured() && st.Upper != "" {
		ch.UnionOverlayDirectory = st.Upper // where jailmgr really keeps it
	}
	return ch
}

// Labels a session begun by the schroot front end carries.
const (
	labelNamespace = "schroot.namespace"
	labelChroot    = "schroot.chroot"
	labelAlias     = "schroot.alias"
	// labelRootUser says whether the owner was a root user of the chroot,
	// as schroot records in the session's root-users.
	labelRootUser = "schroot.root-user"
)

// schrootVersion is --version: jailmgr's, and what it implements.
func schrootVersion() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf(`schroot (jailmgr) %s
The command line of schroot 1.6, on jailmgr's isolated sessions.

Available chroot types:
  DIRECTORY    Support for ‘directory’ chroots
  FILE         Support for ‘file’ chroots
  PLAIN        Support for ‘plain’ chroots
`, v)
}
