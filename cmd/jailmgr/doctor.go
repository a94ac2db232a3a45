package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"jailmgr/session"
)

func (a *app) doctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Show what this kernel and host support, and which jail features would be missing",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			checks := session.Doctor()
			if asJSON {
				return writeJSON(a, checks)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHECK\tOK\tDETAIL")
			var missing []string
			for _, c := range checks {
				ok := "yes"
				if !c.OK {
					ok = "NO"
					missing = append(missing, c.Name+": "+c.Affects)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, ok, c.Detail)
			}
			tw.Flush()
			if len(missing) == 0 {
				fmt.Fprintln(a.stdout, "\nevery jail feature is available")
				return nil
			}
			fmt.Fprintln(a.stdout, "\nmissing:")
			for _, m := range missing {
				fmt.Fprintln(a.stdout, "  "+m)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
