package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"jailmgr/store"
)

func (a *app) imageExportCmd() *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "export REF -o FILE",
		Short: "Write an image version to a file: a zstd tar of its root, or an OCI image layout",
		Long: `Write an image version to a file: a zstd tar of its root, or an OCI image layout.

--format tar (the default) writes a zstd-compressed tar of the root that
'tar --zstd -xpf FILE' unpacks as it is (with GNU tar, add --xattrs
--xattrs-include='*' to keep file capabilities). The image's manifest and
file index follow the tar in a zstd skippable frame, which tar never sees:
'jailmgr image import' restores the manifest and checks every entry.

--format oci writes an OCI image layout archive with one layer, a config
with PATH and a default command (/bin/bash, else /bin/sh), and the tag N
(the image's version), for skopeo, umoci and container engines:
  skopeo copy oci-archive:FILE docker://REGISTRY/NAME:TAG

Both are deterministic: the same tree gives the same bytes. FILE is written
under a temporary name and renamed when complete.`,
		Example: "  jailmgr image export bookworm -o bookworm.tar.zst\n  jailmgr image export bookworm:2 --format oci -o bookworm.oci.tar",
		Args:    exactArgs(1, "one image reference, NAME or NAME:VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("%s needs -o FILE (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())}
			}
			if format != store.FormatTar && format != store.FormatOCI {
				return usageError{fmt.Errorf("--format %q: tar or oci", format)}
			}
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, err := st.Resolve(args[0])
			if err != nil {
				return err
			}
			// rm and gc wait until the export has read the version.
			release, err := st.Use(img)
			if err != nil {
				return err
			}
			defer release()
			start := time.Now()
			if err := img.Export(cmd.Context(), out, store.ExportOptions{Format: format, Progress: a.progress("exporting " + img.Ref())}); err != nil {
				return err
			}
			if !a.quiet {
				fi, err := os.Stat(out)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "exported %s to %s (%s, %s)\n", img.Ref(), out, humanSize(fi.Size()), time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the `FILE` to write")
	cmd.Flags().StringVar(&format, "format", store.FormatTar, "tar (zstd) or oci (image layout archive)")
	return cmd
}

func (a *app) imageImportCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Add an image version from a file written by 'image export' (tar or OCI)",
		Long: `Add an image version from a file written by 'image export', in either format
(told apart by content), or from an OCI image layout archive of another tool,
or a zstd tar of a root ('tar --zstd -cf'; then --name is needed).

Every entry is written inside the new root: names with '..', absolute names,
writes through symlinks and hard links that leave the root are refused. OCI
digests and sizes are checked (manifest, config, layer and its diff_id), and
a tar export's entries against the index it carries. OCI whiteouts are
refused. On any error nothing is committed.

The new version is NAME:N, NAME by default the one in the carried manifest;
it prints NAME:N.`,
		Example: "  jailmgr image import bookworm.tar.zst\n  jailmgr image import bookworm.oci.tar --name bookworm-copy",
		Args:    exactArgs(1, "one file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name != "" && !store.ValidName(name) {
				return usageError{fmt.Errorf("--name %q: a name is letters, digits, '.', '-' and '_'", name)}
			}
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, err := st.Import(cmd.Context(), args[0], store.ImportOptions{Name: name, Progress: a.progress("importing " + args[0])})
			if errors.Is(err, store.ErrBadRef) && name == "" {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, img.Ref())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "image `NAME` (default: the name in the archive's manifest)")
	return cmd
}

// progress says how a long job shows its bytes: a bar on a terminal,
// a plain line at every tenth otherwise, nothing with -q.
func (a *app) progress(what string) func(total int64) store.Bar {
	if a.quiet {
		return nil
	}
	if file, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		return func(total int64) store.Bar {
			return &bar{progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(file),
				progressbar.OptionSetDescription(what),
				progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(100e6),
				progressbar.OptionClearOnFinish(),
			)}
		}
	}
	return func(total int64) store.Bar { return &lineBar{w: a.stderr, what: what, total: total} }
}

// lineBar prints a line each time another tenth of the work is done.
type lineBar struct {
	w      io.Writer
	what   string
	total  int64
	done   int64
	tenths int64
}

func (b *lineBar) Add(n int64) {
	b.done += n
	if b.total <= 0 {
		return
	}
	if t := min(b.done*10/b.total, 10); t > b.tenths {
		b.tenths = t
		fmt.Fprintf(b.w, "%s: %d%% (%s of %s)\n", b.what, t*10, humanSize(b.done), humanSize(b.total))
	}
}

func (b *lineBar) Finish() {}
