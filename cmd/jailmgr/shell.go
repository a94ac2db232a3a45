package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"jailmgr/session"
)

func (a *app) shellCmd() *cobra.Command {
	var userName string
	var preserve int
	cmd := &cobra.Command{
		Use:   "shell JAIL [-u root] [--preserve-fds N]",
		Short: "Open a login shell on a terminal of its own in a throwaway session",
		Long: `Open a login shell in a throwaway session of a jail or image.

The shell runs on a pty inside the jail: window size changes follow, job
control works, and ^C reaches the job in the foreground there, not jailmgr.
The shell is the jail's shell = setting, else your login shell if the jail
has it, else /bin/sh.

Told to stop (SIGTERM, SIGHUP, SIGINT, SIGQUIT), jailmgr passes the signal
to the shell and hangs its terminal up, as a closed terminal would.`,
		Args: exactArgs(1, "one jail or image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sigs := catchSignals(cmd.Context(), nil)
			defer sigs.stop()
			extra, err := preservedFiles(preserve)
			if err != nil {
				return err
			}
			if !term.IsTerminal(int(os.Stdin.Fd())) {
				return usageError{fmt.Errorf("shell needs a terminal; use 'jailmgr run JAIL -- COMMAND' from scripts")}
			}
			user, err := session.Caller()
			if err != nil {
				return err
			}
			asRoot := userName == "root"
			if userName != "" && !asRoot {
				return usageError{fmt.Errorf("-u %s: only root can be asked for", userName)}
			}
			spec, err := a.resolveJail(args[0], "", user, asRoot)
			if err != nil {
				return err
			}
			shell := spec.Jail.Shell
			if shell == "" {
				shell = "/bin/sh"
				if user.Shell != "" && !asRoot {
					if _, err := os.Stat(filepath.Join(spec.Lower, user.Shell)); err == nil {
						shell = user.Shell
					}
				}
			}
			dir := user.Home
			if asRoot {
				dir = "/root"
			}
			return a.throwaway(sigs, spec, session.RunOptions{Argv: []string{shell, "-l"}, Env: commandEnv(spec.Jail.Environment, user, asRoot),
				Dir: dir, Root: asRoot, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Pty: true, ExtraFiles: extra})
		},
	}
	cmd.Flags().StringVarP(&userName, "user", "u", "", "root for a root shell (root-users only)")
	preserveFlag(cmd, &preserve)
	return cmd
}
