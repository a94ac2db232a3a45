package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"jailmgr/store"
)

func (a *app) imageDiffCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Show the packages and files that differ from image A to image B",
		Args:  exactArgs(2, "two image references, e.g. 'bookworm:1 bookworm:2'"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			ia, err := st.Resolve(args[0])
			if err != nil {
				return err
			}
			ib, err := st.Resolve(args[1])
			if err != nil {
				return err
			}
			d, err := store.Diff(ia, ib)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, d)
			}
			printDiff(a.stdout, d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDiff(w io.Writer, d *store.DiffReport) {
	pkg := func(name, arch string) string {
		if arch == "" {
			return name
		}
		return name + ":" + arch
	}
	for _, p := range d.PackagesAdded {
		fmt.Fprintf(w, "package added    %s %s\n", pkg(p.Name, p.Arch), p.Version)
	}
	for _, p := range d.PackagesRemoved {
		fmt.Fprintf(w, "package removed  %s %s\n", pkg(p.Name, p.Arch), p.Version)
	}
	for _, p := range d.PackagesChanged {
		fmt.Fprintf(w, "package changed  %s %s → %s\n", pkg(p.Name, p.Arch), p.From, p.To)
	}
	for _, p := range d.FilesAdded {
		fmt.Fprintf(w, "file added       %s\n", p)
	}
	for _, p := range d.FilesRemoved {
		fmt.Fprintf(w, "file removed     %s\n", p)
	}
	for _, c := range d.FilesChanged {
		fmt.Fprintf(w, "file changed     %s%s\n", c.Path, changeNote(&c))
	}
	fmt.Fprintf(w, "%s → %s: packages %d added, %d removed, %d changed; files %d added, %d removed, %d changed\n",
		d.From, d.To, len(d.PackagesAdded), len(d.PackagesRemoved), len(d.PackagesChanged),
		len(d.FilesAdded), len(d.FilesRemoved), len(d.FilesChanged))
}
