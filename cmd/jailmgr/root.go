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
	if err := checkSetuidArgs(args); err != nil {
		fmt.Fprintf(stderr, "jailmgr: %v\n", err)
		return 1
	}
	if rest, ok := a.schrootArgs(args); ok {
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
	fmt.Fprintf(stderr, "jailmgr: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// schrootArgs finds "schroot" after jailmgr's global flags (which it
// applies) and returns the arguments after it.
func (a *app) schrootArgs(args []string) ([]string, bool) {
	a.globalsFromEnv()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(arg, "=")
		switch {
		case arg == "schroot":
			return args[i+1:], true
		case arg == "-q" || arg == "--quiet":
			a.quiet = true
		case (name == "--store" || name == "--config") && hasValue:
			a.setGlobal(name, value)
		case (arg == "--store" || arg == "--config") && i+1 < len(args):
			a.setGlobal(arg, args[i+1])
			i++
		default:
			return nil, false
		}
	}
	return nil, false
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
