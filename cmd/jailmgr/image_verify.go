package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"jailmgr/store"
)

func (a *app) imageVerifyCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify REF",
		Short: "Check an image's files against its index and dpkg's md5sums",
		Long: `Check every path of an image version against the file index written when it
was committed (type, content, link target, mode, owner, mtime, xattrs; missing
and added paths), and the files of its packages against dpkg's md5sums
(diversions honoured, conffiles left out). A version committed before file
indexes existed is checked against md5sums only.

Exit status 0 when everything matches, 1 when anything differs (or the check
could not run).`,
		Args: exactArgs(1, "one image reference, NAME, NAME:VERSION or NAME:TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, err := st.Resolve(args[0])
			if err != nil {
				return err
			}
			r, err := store.Verify(img)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(a, r); err != nil {
					return err
				}
			} else {
				printVerify(a.stdout, r)
				if !a.quiet {
					for _, n := range r.Notes {
						fmt.Fprintf(a.stderr, "note: %s\n", n)
					}
				}
			}
			if !r.OK() {
				return exitCode(1) // the report said why
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printVerify(w io.Writer, r *store.VerifyReport) {
	for _, l := range []struct {
		what  string
		paths []store.PathChange
	}{{"changed", r.Changed}, {"missing", r.Missing}, {"extra", r.Extra}} {
		for _, c := range l.paths {
			fmt.Fprintf(w, "%-8s %s%s\n", l.what, c.Path, changeNote(&c))
		}
	}
	var checked []string
	if r.Indexed {
		checked = append(checked, fmt.Sprintf("%d indexed paths", r.Paths))
	}
	if r.Packages > 0 {
		checked = append(checked, fmt.Sprintf("%d files of %d packages against dpkg's md5sums", r.Files, r.Packages))
	}
	if !r.Indexed {
		checked = append(checked, "no file index")
	}
	if r.OK() {
		fmt.Fprintf(w, "%s: OK (%s)\n", r.Image, strings.Join(checked, "; "))
		return
	}
	fmt.Fprintf(w, "%s: %d changed, %d missing, %d extra (%s)\n", r.Image, len(r.Changed), len(r.Missing), len(r.Extra), strings.Join(checked, "; "))
}

// changeNote is what follows a path: what changed and whose it is.
func changeNote(c *store.PathChange) string {
	var parts []string
	switch {
	case c.Content && c.Metadata:
		parts = append(parts, "content and metadata")
	case c.Content:
		parts = append(parts, "content")
	case c.Metadata:
		parts = append(parts, "metadata")
	}
	if c.Package != "" {
		parts = append(parts, "package "+c.Package)
	}
	s := ""
	if len(parts) > 0 {
		s = " (" + strings.Join(parts, ", ") + ")"
	}
	if len(c.Details) > 0 {
		s += ": " + strings.Join(c.Details, "; ")
	}
	return s
}
