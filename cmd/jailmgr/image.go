package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"jailmgr/store"
)

func (a *app) imageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "List, show, remove, export and import images"}
	cmd.AddCommand(a.imageListCmd(), a.imageShowCmd(), a.imageRmCmd(), a.imageExportCmd(), a.imageImportCmd())
	return cmd
}

// imageRow is one line of 'image list --json'.
type imageRow struct {
	Name     string    `json:"name"`
	Version  int       `json:"version"`
	Suite    string    `json:"suite"`
	Variant  string    `json:"variant"`
	Arch     string    `json:"arch"`
	Packages int       `json:"packages"`
	Size     int64     `json:"size"`
	Created  time.Time `json:"created"`
}

func (a *app) imageListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List image versions",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			imgs, err := st.Images()
			if err != nil {
				return err
			}
			rows := []imageRow{}
			for _, i := range imgs {
				m := i.Manifest
				rows = append(rows, imageRow{i.Name, i.Version, m.Suite, m.Variant, m.Arch, len(m.Packages), m.Size, m.Created})
			}
			if asJSON {
				return writeJSON(a, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSUITE\tVARIANT\tARCH\tPACKAGES\tSIZE\tCREATED")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Name, r.Version, r.Suite, r.Variant, r.Arch, r.Packages, humanSize(r.Size), r.Created.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) imageShowCmd() *cobra.Command {
	var asJSON, rootfsOnly bool
	cmd := &cobra.Command{
		Use:   "show REF",
		Short: "Show an image's manifest (REF is NAME or NAME:VERSION)",
		Args:  exactArgs(1, "one image reference, NAME or NAME:VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, err := st.Resolve(args[0])
			if err != nil {
				return err
			}
			out := struct {
				store.Manifest
				RootFS string `json:"rootfs"`
			}{img.Manifest, img.RootFS()}
			if asJSON {
				return writeJSON(a, out)
			}
			if rootfsOnly {
				fmt.Fprintln(a.stdout, img.RootFS())
				return nil
			}
			m := img.Manifest
			fmt.Fprintf(a.stdout, "image:      %s\nsuite:      %s (%s)\nvariant:    %s\narch:       %s\ncomponents: %v\nmirror:     %s\ninrelease:  sha256 %s\npackages:   %d\nsize:       %s\ncreated:    %s\nrootfs:     %s\n",
				img.Ref(), m.Suite, m.Distribution, m.Variant, m.Arch, m.Components, m.Mirror, m.InReleaseSHA256, len(m.Packages), humanSize(m.Size), m.Created.Local().Format(time.RFC3339), img.RootFS())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest and rootfs path as JSON")
	cmd.Flags().BoolVar(&rootfsOnly, "rootfs", false, "print only the root filesystem's path")
	cmd.MarkFlagsMutuallyExclusive("json", "rootfs")
	return cmd
}

func (a *app) imageRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF",
		Short: "Remove an image version (REF is NAME, its newest, or NAME:VERSION)",
		Args:  exactArgs(1, "one image reference, NAME or NAME:VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, err := st.Remove(args[0])
			if err != nil {
				return err
			}
			if !a.quiet {
				fmt.Fprintf(a.stderr, "removed %s\n", img.Ref())
			}
			return nil
		},
	}
}

func (a *app) storeFromConfig() (*store.Store, error) {
	c, err := a.config()
	if err != nil {
		return nil, err
	}
	return a.openStore(c)
}

func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
