//go:build man

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// The man page writer is built only with the "man" tag ('make install'
// builds bin/jailmgr-man for it): cobra/doc brings a markdown renderer whose
// package initialisation every jailmgr process, session helpers included,
// would otherwise pay at start.
func init() { extraCommands = append(extraCommands, (*app).manCmd) }

// manCmd writes man pages for every command into a folder; hidden because
// users read the pages, not make them.
func (a *app) manCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write man pages into DIR",
		Hidden: true,
		Args:   exactArgs(1, "one folder"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("write man pages: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			return doc.GenManTree(root, &doc.GenManHeader{Title: "JAILMGR", Section: "1", Source: "jailmgr"}, args[0])
		},
	}
}
