package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"jailmgr/conf"
	"jailmgr/session"
	"jailmgr/store"
)

// app holds the global flags of one invocation.
type app struct {
	storeDir   string
	configPath string
	quiet      bool
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	// release lets go of the image a session is about to mount, once
	// begin has mounted it (see resolveJail).
	release func()
	// schrootDir is schroot's configuration folder (JAILMGR_SCHROOT_DIR).
	schrootDir string
	// now is the clock (--config dates its output).
	now func() time.Time
	// ctx is main's: it ends when main catches SIGINT or SIGTERM (nil
	// when main did not set one up, as for a binary called schroot).
	ctx context.Context
}

// extraCommands are commands that only some builds have (see man.go).
var extraCommands []func(*app) *cobra.Command

// usageError marks errors in the command line (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr)
	a.ctx = ctx
	if rest, ok, err := a.schrootArgs(args); err != nil {
		fmt.Fprintf(stderr, "jailmgr: %s\n", printable(err.Error()))
		return 1
	} else if ok {
		// schroot's command line is schroot's to parse, not cobra's.
		return a.runSchroot("jailmgr schroot", rest)
	}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec) // the jailed command's own status; it said why
	}
	fmt.Fprintf(stderr, "jailmgr: %s\n", printable(err.Error()))
	if code, ok := signalStatus(err); ok {
		return code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// schrootArgs finds "schroot" after jailmgr's global flags (which it
// applies) and returns the arguments after it. Through a setuid jailmgr,
// --store and --config are root's, here as on cobra's command lines.
func (a *app) schrootArgs(args []string) ([]string, bool, error) {
	a.globalsFromEnv()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(arg, "=")
		switch {
		case arg == "schroot":
			return args[i+1:], true, nil
		case arg == "-q" || arg == "--quiet":
			a.quiet = true
		case (name == "--store" || name == "--config") && (hasValue || i+1 < len(args)):
			if privileged.on {
				return nil, false, fmt.Errorf("%w: %s is for root only: through a setuid jailmgr, the store, the configuration and everything they name are root's own (run it as root or with sudo)", session.ErrDenied, name)
			}
			if !hasValue {
				value = args[i+1]
				i++
			}
			a.setGlobal(name, value)
		default:
			return nil, false, nil
		}
	}
	return nil, false, nil
}

// globalsFromEnv sets the global flags' values from the environment, as
// their defaults are, for command lines cobra does not parse.
func (a *app) globalsFromEnv() {
	a.configPath = os.Getenv("JAILMGR_CONFIG")
	if a.configPath == "" {
		a.configPath = conf.DefaultPath
	}
	a.storeDir = os.Getenv("JAILMGR_STORE")
}

func (a *app) setGlobal(name, value string) {
	if name == "--store" {
		a.storeDir = value
	} else {
		a.configPath = value
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, schrootDir: schrootDir(), now: time.Now}
}

func (a *app) rootCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "jailmgr",
		Short:         "Build Debian and Ubuntu jail images and run isolated sessions in them",
		SilenceUsage:  true,
		SilenceErrors: true,
		// The one place a setuid start is checked: after cobra has
		// parsed the whole line, before any command's own code. No other
		// command may have a persistent pre-run hook (cobra would run
		// that one instead); TestOnePersistentHook checks.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error { return checkSetuid(cmd) },
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	storeDefault := os.Getenv("JAILMGR_STORE")
	configDefault := os.Getenv("JAILMGR_CONFIG")
	if configDefault == "" {
		configDefault = conf.DefaultPath
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.storeDir, "store", storeDefault, "image store `DIR` (env JAILMGR_STORE; default "+store.DefaultDir+", or store= in the config)")
	pf.StringVar(&a.configPath, "config", configDefault, "configuration `FILE` (env JAILMGR_CONFIG); *.conf in jailmgr.d beside it are read too")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only errors and results")
	cmd.AddCommand(a.bootstrapCmd(), a.imageCmd(), a.configCmd(), a.jailCmd(), a.runCmd(), a.shellCmd(), a.sessionCmd(), a.schrootCmd(), a.doctorCmd())
	for _, c := range extraCommands {
		cmd.AddCommand(c(a))
	}
	return cmd
}

// config loads the configuration; a broken one stops every command. Jails
// are checked here too, except whether their images exist: an admin may
// define a jail before bootstrapping its image ('config check' checks that).
func (a *app) config() (*conf.Config, error) {
	c, err := conf.Load(a.configPath)
	if err != nil {
		return nil, err
	}
	if _, err := c.Jails(nil); err != nil {
		return nil, err
	}
	return c, nil
}

// openStore opens the store named by --store, the config, or the default.
func (a *app) openStore(c *conf.Config) (*store.Store, error) {
	dir := a.storeDir
	if dir == "" && c != nil {
		dir = c.Store
	}
	if dir == "" {
		dir = store.DefaultDir
	}
	return store.Open(dir)
}

// logw is where progress lines go: stderr, or nowhere with -q.
func (a *app) logw() io.Writer {
	if a.quiet {
		return io.Discard
	}
	return a.stderr
}

// exactArgs is cobra.ExactArgs with a usage error that says what is wanted.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s (see '%s --help')", cmd.CommandPath(), what, cmd.CommandPath())}
		}
		return nil
	}
}
