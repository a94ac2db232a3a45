package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"jailmgr/bootstrap"
)

func (a *app) imageUpdateCmd() *cobra.Command {
	var include []string
	cmd := &cobra.Command{
		Use:   "update REF",
		Short: "Build the next version of an image: apt-get update and dist-upgrade (and --include) in a session",
		Long: `Update builds version N+1 from the version REF names. The image's own apt
upgrades it inside an ephemeral overlay session (network from the host, mounts
private to the session); the changes are merged with hard links to every
unchanged file, so the new version costs only what changed, and committed with
a fresh manifest. The old version is never written to: sessions running on it
carry on, and 'image rm' or 'gc' remove it when it is no longer wanted.

When apt has nothing to upgrade and nothing to install (dpkg's status and
apt's marks are unchanged), no version is committed: it says REF is current
and prints REF's version.`,
		Args: exactArgs(1, "one image reference, NAME, NAME:VERSION or NAME:TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			// main's context ends on SIGINT and SIGTERM with the signal
			// as its cause, which sets the exit status (130, 143).
			ctx := cmd.Context()
			res, err := bootstrap.Update(ctx, st, bootstrap.UpdateOptions{Ref: args[0], Include: include, Log: a.logw()})
			if err != nil {
				return err
			}
			if !a.quiet {
				for _, c := range res.Upgraded {
					fmt.Fprintln(a.stderr, "  "+c)
				}
				if res.Current {
					fmt.Fprintf(a.stderr, "%s is current\n", res.Image.Ref())
				}
			}
			fmt.Fprintln(a.stdout, res.Image.Ref())
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&include, "include", nil, "also install these packages (comma-separated)")
	return cmd
}
