package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"jailmgr/bootstrap"
)

type bootstrapFlags struct {
	variant    string
	include    []string
	exclude    []string
	components []string
	arch       string
	mirror     string
	keyring    string
	name       string
	jobs       int
	hooks      []string
	force      bool

	// pockets, securityMirror and ignoreValidUntil choose the suites read
	// besides the release, and how strictly.
	pockets          []string
	securityMirror   string
	ignoreValidUntil bool
}

func (a *app) bootstrapCmd() *cobra.Command {
	var f bootstrapFlags
	cmd := &cobra.Command{
		Use:   "bootstrap SUITE",
		Short: "Build a new image version from a Debian or Ubuntu archive",
		Long: `Build a new image version from a Debian or Ubuntu archive.

The suite's InRelease is verified against the archive keyring, every index and
package against its SHA256; the package set is the one debootstrap selects for
the same suite and variant. Packages are cached in the store and shared by all
bootstraps. The result is committed as image NAME:N (NAME defaults to SUITE).
If the newest version of NAME was built from the same inputs (the archive's
signed state, suite, variant, architecture, components, mirror, --include,
--exclude, customize hooks, SOURCE_DATE_EPOCH and this jailmgr binary), it is
reused and printed instead: nothing is downloaded or committed. --force builds
anyway.

SUITE may be an alias (stable, testing, unstable, oldstable, oldoldstable; devel
for Ubuntu): the codename that the archive's signed Release file for it names is
bootstrapped, and names the image unless --name does.

The mirror comes from --mirror, else mirror.debian / mirror.ubuntu in the
[jailmgr] section of the config, else the host's apt sources, else the host's
debootstrap script for the suite (how a Debian host finds an Ubuntu mirror).

The image is current: besides the release, its updates (SUITE-updates, on the
same mirror) and security (SUITE-security) pockets are read where the suite has
them, the newest version of each package wins as in apt, and the image's
sources.list names them all, so 'image update' brings later fixes. The security
mirror comes from --security-mirror, else security-mirror.debian /
security-mirror.ubuntu in the config, else the host's apt sources, else (Ubuntu)
the release mirror. --pockets release builds from the release alone, as
debootstrap does. --ignore-valid-until accepts an expired Release file (a
snapshot archive, a frozen mirror); signatures and hashes are still checked.`,
		Example: "  jailmgr bootstrap bookworm --variant minbase\n  jailmgr bootstrap noble --variant buildd --name noble-build --include git,ccache",
		Args:    exactArgs(1, "one suite (for example bookworm)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			o := bootstrap.Options{
				Suite: args[0], Variant: f.variant, Include: splitList(f.include), Exclude: splitList(f.exclude),
				Components: splitList(f.components), Arch: f.arch, Mirror: f.mirror, Keyring: f.keyring,
				Name: f.name, Jobs: f.jobs, CustomizeHooks: f.hooks, ConfigMirrors: c.Mirrors, Log: a.logw(),
				Force: f.force,
			}
			o.SecurityMirror, o.IgnoreValidUntil, o.ConfigSecurityMirrors = f.securityMirror, f.ignoreValidUntil, c.SecurityMirrors
			if cmd.Flags().Changed("pockets") {
				// Given but empty is not the default: setDefaults
				// refuses it for lacking the release.
				o.Pockets = append([]string{}, splitList(f.pockets)...)
			}
			if file, ok := a.stderr.(*os.File); ok && !a.quiet && term.IsTerminal(int(file.Fd())) {
				o.Progress = func(total int64, count int) bootstrap.Bar {
					return &bar{progressbar.NewOptions64(total,
						progressbar.OptionSetWriter(file),
						progressbar.OptionSetDescription(fmt.Sprintf("downloading %d packages", count)),
						progressbar.OptionShowBytes(true),
						progressbar.OptionThrottle(100e6),
						progressbar.OptionClearOnFinish(),
					)}
				}
			}
			// Settle everything that can be wrong with the command line
			// before the store is touched.
			plan, err := bootstrap.MakePlanContext(cmd.Context(), &o)
			if errors.Is(err, bootstrap.ErrUsage) || errors.Is(err, bootstrap.ErrUnknownSuite) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			st, err := a.openStore(c)
			if err != nil {
				return err
			}
			res, err := bootstrap.Run(cmd.Context(), o, plan, st)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", res.Image.Ref())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.variant, "variant", "default", "package set: "+strings.Join(bootstrap.Variants, ", "))
	fl.StringSliceVar(&f.include, "include", nil, "more packages, comma-separated `P,…`")
	fl.StringSliceVar(&f.exclude, "exclude", nil, "packages left out of the seed set `P,…`")
	fl.StringSliceVar(&f.components, "components", nil, "archive components `C,…` (default: the suite's, main)")
	fl.StringVar(&f.arch, "arch", "", "Debian architecture (default: the host's)")
	fl.StringVar(&f.mirror, "mirror", "", "archive `URL` (default: config, then the host's apt sources)")
	fl.StringVar(&f.keyring, "keyring", "", "OpenPGP keyring `FILE` to verify the archive (default: the distribution's archive keyring)")
	fl.StringVar(&f.name, "name", "", "image name (default: SUITE, or the codename an alias stands for)")
	fl.IntVarP(&f.jobs, "jobs", "j", 8, "parallel downloads")
	fl.StringArrayVar(&f.hooks, "customize-hook", nil, "shell `CMD` run with the staged root as $1 before commit (repeatable)")
	fl.StringSliceVar(&f.pockets, "pockets", nil, "suites read `P,…`: "+strings.Join(bootstrap.Pockets, ",")+" (default: the release and every pocket the suite has)")
	fl.StringVar(&f.securityMirror, "security-mirror", "", "mirror `URL` of the security pocket (default: config, then the host's apt sources, then for Ubuntu the release mirror)")
	fl.BoolVar(&f.ignoreValidUntil, "ignore-valid-until", false, "accept expired Release files (snapshot archives, frozen mirrors); the image's apt is set to do the same")
	fl.BoolVar(&f.force, "force", false, "build a new version even if the newest one of NAME was built from the same inputs")
	return cmd
}

// splitList trims and drops empty items of a comma list flag.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// bar adapts progressbar to bootstrap.Bar.
type bar struct{ b *progressbar.ProgressBar }

func (b *bar) Add(n int64) { b.b.Add64(n) }
func (b *bar) Finish()     { b.b.Finish() }
