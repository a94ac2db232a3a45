package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"jailmgr/store"
)

func (a *app) imageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "List, show, create, tag, verify, diff, update, export, import and remove images"}
	cmd.AddCommand(a.imageListCmd(), a.imageShowCmd(), a.imageRmCmd(), a.imageUpdateCmd(), a.imageGCCmd(),
		a.imageTagCmd(), a.imageUntagCmd(), a.imageVerifyCmd(), a.imageDiffCmd(), a.imageCreateCmd(),
		a.imageExportCmd(), a.imageImportCmd())
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
	Tags     []string  `json:"tags"` // "NAME:TAG" of the tags pointing at it
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
			tags, err := st.Tags()
			if err != nil {
				return err
			}
			byImage := map[string][]string{}
			for t, target := range tags {
				byImage[target] = append(byImage[target], t)
			}
			rows := []imageRow{}
			for _, i := range imgs {
				m := i.Manifest
				t := byImage[i.Ref()]
				sort.Strings(t)
				delete(byImage, i.Ref())
				rows = append(rows, imageRow{i.Name, i.Version, m.Suite, m.Variant, m.Arch, len(m.Packages), m.Size, m.Created, append([]string{}, t...)})
			}
			if asJSON {
				return writeJSON(a, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSUITE\tVARIANT\tARCH\tPACKAGES\tSIZE\tCREATED\tTAGS")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, r.Version, r.Suite, r.Variant, r.Arch, r.Packages, humanSize(r.Size), r.Created.Local().Format("2006-01-02 15:04"), strings.Join(r.Tags, ","))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// What is left points at removed versions.
			if !a.quiet {
				var dangling []string
				for target, ts := range byImage {
					for _, t := range ts {
						dangling = append(dangling, fmt.Sprintf("jailmgr: tag %s points at %s, which was removed (jailmgr image untag %s)", t, target, t))
					}
				}
				sort.Strings(dangling)
				for _, l := range dangling {
					fmt.Fprintln(a.stderr, l)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) imageShowCmd() *cobra.Command {
	var asJSON, rootfsOnly bool
	cmd := &cobra.Command{
		Use:   "show REF",
		Short: "Show an image's manifest (REF is NAME, NAME:VERSION or NAME:TAG)",
		Args:  exactArgs(1, "one image reference, NAME, NAME:VERSION or NAME:TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, err := st.Resolve(args[0])
			if err != nil {
				return err
			}
			tags, err := st.TagsOf(img)
			if err != nil {
				return err
			}
			out := struct {
				store.Manifest
				RootFS string   `json:"rootfs"`
				Tags   []string `json:"tags"`
			}{img.Manifest, img.RootFS(), append([]string{}, tags...)}
			if asJSON {
				return writeJSON(a, out)
			}
			if rootfsOnly {
				fmt.Fprintln(a.stdout, img.RootFS())
				return nil
			}
			m := img.Manifest
			fmt.Fprintf(a.stdout, "image:      %s\ntags:       %s\nsuite:      %s (%s)\nvariant:    %s\narch:       %s\ncomponents: %v\nmirror:     %s\ninrelease:  sha256 %s\npackages:   %d\nsize:       %s\ncreated:    %s\nrootfs:     %s\n",
				img.Ref(), strings.Join(tags, ", "), m.Suite, m.Distribution, m.Variant, m.Arch, m.Components, m.Mirror, m.InReleaseSHA256, len(m.Packages), humanSize(m.Size), m.Created.Local().Format(time.RFC3339), img.RootFS())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest and rootfs path as JSON")
	cmd.Flags().BoolVar(&rootfsOnly, "rootfs", false, "print only the root filesystem's path")
	cmd.MarkFlagsMutuallyExclusive("json", "rootfs")
	return cmd
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
