package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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
}

// usageError marks errors in the command line (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	if err := checkSetuidArgs(args); err != nil {
		fmt.Fprintf(stderr, "jailmgr: %v\n", err)
		return 1
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
	cmd.AddCommand(a.bootstrapCmd(), a.imageCmd(), a.configCmd(), a.jailCmd(), a.runCmd(), a.shellCmd(), a.sessionCmd(), a.doctorCmd(), a.manCmd())
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
