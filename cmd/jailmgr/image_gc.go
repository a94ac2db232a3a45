package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"jailmgr/session"
	"jailmgr/store"
)

func (a *app) imageRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm REF",
		Short: "Remove an image version (REF is NAME, its newest, NAME:VERSION or NAME:TAG)",
		Long: `Remove deletes one image version. It refuses while a session runs on the
version; --force first ends those sessions (their processes are killed and
what they wrote is lost), naming each one.`,
		Args: exactArgs(1, "one image reference, NAME, NAME:VERSION or NAME:TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			var tags []string
			if img, err := st.Resolve(args[0]); err == nil {
				tags, _ = st.TagsOf(img)
			}
			img, err := st.Remove(args[0])
			var inUse *store.InUseError
			if errors.As(err, &inUse) && force && !inUse.Busy {
				if err := a.endSessionsOn(inUse); err != nil {
					return err
				}
				img, err = st.Remove(args[0])
			}
			if err != nil {
				return err
			}
			if !a.quiet {
				fmt.Fprintf(a.stderr, "removed %s\n", img.Ref())
			}
			if len(tags) > 0 {
				fmt.Fprintf(a.stderr, "warning: tags %s named %s and now dangle: move them with 'jailmgr image tag' or remove them with 'jailmgr image untag'\n", strings.Join(tags, ", "), img.Ref())
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "end the sessions that use the version first")
	return cmd
}

// endSessionsOn ends the sessions whose roots hold a version in use, and
// says which; a mount that belongs to no session it knows stops it.
func (a *app) endSessionsOn(e *store.InUseError) error {
	// A damaged session may be the one that holds the version: then its
	// mount is left over below, and stops the removal.
	states, err := session.List(runDir())
	if err != nil && !session.OnlyDamaged(err) {
		return err
	}
	var ids []string
	left := slices.Clone(e.Mounts)
	for _, s := range states {
		// A session's root may be mounted more than once below its
		// state folder (the jail's own and the host's view of it).
		mine := slices.DeleteFunc(slices.Clone(left), func(m string) bool { return !strings.HasPrefix(m, s.Dir+"/") })
		if len(mine) == 0 {
			continue
		}
		left = slices.DeleteFunc(left, func(m string) bool { return strings.HasPrefix(m, s.Dir+"/") })
		ids = append(ids, s.ID)
		fmt.Fprintf(a.stderr, "warning: ending session %s (jail %s, user %s) that runs on %s: its processes are killed and its changes lost\n", s.ID, s.Jail, s.User, e.Ref)
	}
	if len(left) > 0 {
		return fmt.Errorf("%s is also mounted at %s, which is no session of %s: unmount it first", e.Ref, strings.Join(left, ", "), runDir())
	}
	for _, id := range ids {
		if err := session.End(runDir(), id); err != nil {
			return fmt.Errorf("end session %s: %w", id, err)
		}
	}
	return nil
}

func (a *app) imageGCCmd() *cobra.Command {
	var o store.GCOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove old versions, staging leftovers, unused cache entries and old failure logs",
		Long: `gc keeps, for each image name, its --keep newest versions, every tagged
version and every version a session runs on, and removes the other versions.
It sweeps staging areas no live process owns, and removes cached packages no
remaining version lists and package indexes unused for two weeks; while a
bootstrap, update or import runs, the cache is left alone. It removes the logs
that failed bootstraps and updates kept in the store's logs/ folder once they
are a day old. It reports what it freed.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Keep < 1 {
				return usageError{fmt.Errorf("--keep %d: keep at least the newest version (1)", o.Keep)}
			}
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			rep, err := st.GC(o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, rep)
			}
			verb := "removed"
			if o.DryRun {
				verb = "would remove"
			}
			for _, r := range rep.Removed {
				fmt.Fprintf(a.stdout, "%s %s\n", verb, r)
			}
			for _, r := range rep.KeptTagged {
				fmt.Fprintf(a.stdout, "kept %s (tagged)\n", r)
			}
			for _, r := range rep.KeptInUse {
				fmt.Fprintf(a.stdout, "kept %s (in use by a session)\n", r)
			}
			if rep.CacheSkipped {
				fmt.Fprintln(a.stdout, "cache not pruned: a bootstrap, update or import is running")
			}
			fmt.Fprintf(a.stdout, "%s %d versions, %d staging leftovers, %d cache files, %d failure logs (%s); freed %s\n",
				verb, len(rep.Removed), rep.Staging, rep.CacheFiles, rep.Logs, humanSize(rep.LogBytes), humanSize(rep.Freed))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Keep, "keep", 1, "newest versions to keep of each image")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would go, remove nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
