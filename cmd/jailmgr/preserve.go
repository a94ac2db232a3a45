package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"jailmgr/session"
)

// preserveFlag adds --preserve-fds, named as systemd-run and runc name it:
// only stdio (or the pty) go into a jail, unless the caller asks for more.
func preserveFlag(cmd *cobra.Command, n *int) {
	cmd.Flags().IntVar(n, "preserve-fds", 0, fmt.Sprintf("pass descriptors 3 to 3+`N`-1 to the command as 3 to 3+N-1 (at most %d)", session.MaxPreserveFDs))
}

// preservedFiles are the descriptors --preserve-fds N names, each one the
// caller handed over.
func preservedFiles(n int) ([]*os.File, error) {
	if n < 0 || n > session.MaxPreserveFDs {
		return nil, usageError{fmt.Errorf("--preserve-fds %d: from 0 to %d descriptors can be passed", n, session.MaxPreserveFDs)}
	}
	files, err := session.PreservedFiles(n)
	if errors.Is(err, session.ErrNotInherited) {
		return nil, usageError{fmt.Errorf("--preserve-fds %d: %w (open descriptors 3 to %d before running jailmgr)", n, err, 2+n)}
	}
	return files, err
}
