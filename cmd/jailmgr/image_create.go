package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"jailmgr/bootstrap"
	"jailmgr/store"
)

type imageCreateFlags struct {
	fromHost bool
}

func (a *app) imageCreateCmd() *cobra.Command {
	var f imageCreateFlags
	cmd := &cobra.Command{
		Use:   "create NAME --from-host PATH...",
		Short: "Make an image of host binaries and the libraries they need",
		Long: `Make an image of host binaries and the libraries they need.

Each PATH (absolute: an ELF executable or shared library) is copied with the
dynamic loader it names and the closure of the libraries it needs, found as
the loader finds them (RPATH, RUNPATH, ld.so.conf, the default folders), each
at its own path; symlinks on the way (a merged-/usr /bin, /lib64) stay
symlinks. The image also gets /etc/passwd and /etc/group (root, nobody),
/etc, /root, and the mount points /proc, /sys, /dev, /tmp. Nothing else: no
/bin/sh unless you pass it, no NSS modules or locales (libraries opened with
dlopen are not followed). Scripts are refused: pass their interpreter.

The result is committed as image NAME:N (suite and distribution "host",
variant "from-host").`,
		Example: "  jailmgr image create tools --from-host /bin/sh /bin/bash /usr/bin/ls\n  jailmgr run tools -- ls -l /",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case !f.fromHost:
				return usageError{fmt.Errorf("image create needs --from-host and the host binaries to copy (see 'jailmgr image create --help')")}
			case len(args) < 2:
				return usageError{fmt.Errorf("image create takes a name, then --from-host and one or more absolute paths (see 'jailmgr image create --help')")}
			case !store.ValidName(args[0]):
				return usageError{fmt.Errorf("%q is not an image name: letters, digits, '.', '-' and '_', not starting with '.' or '-'", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, err := bootstrap.FromHost(st, bootstrap.FromHostOptions{Name: args[0], Paths: args[1:], Log: a.logw()})
			if errors.Is(err, bootstrap.ErrUsage) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", img.Ref())
			return nil
		},
	}
	cmd.Flags().BoolVar(&f.fromHost, "from-host", false, "copy the host binaries given as arguments, with their libraries")
	return cmd
}
