package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"jailmgr/conf"
	"jailmgr/session"
	"jailmgr/store"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Check /etc/jailmgr.conf and jailmgr.d: every problem as file:line: key: what is wrong",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conf.Load(a.configPath)
			if err != nil {
				return err
			}
			st, err := a.openStore(c)
			if err != nil {
				return err
			}
			jails, err := c.Jails(imageChecker(st))
			if err != nil {
				return err
			}
			sc, schrootJails, err := a.schrootJails(jails)
			if err != nil {
				return err
			}
			for _, w := range sc.Warnings {
				fmt.Fprintf(a.stderr, "jailmgr: warning: %v\n", w)
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "%d files, %d jails: ok\n", len(c.Files)+len(sc.Files), len(jails)+len(schrootJails))
			}
			return nil
		},
	})
	return cmd
}

// imageChecker tells whether an image reference names an image.
func imageChecker(st *store.Store) func(string) error {
	return func(ref string) error {
		_, err := st.Locate(ref)
		return err
	}
}

func (a *app) jailCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "jail", Short: "List and show the jails the configuration defines"}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List jails",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			jails, err := a.jails()
			if err != nil {
				return err
			}
			names := make([]string, 0, len(jails))
			for n := range jails {
				names = append(names, n)
			}
			sort.Strings(names)
			if listJSON {
				out := []*conf.Jail{}
				for _, n := range names {
					out = append(out, jails[n])
				}
				return writeJSON(a, out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tALIASES\tSOURCE\tTYPE\tNETWORK\tLIMITS\tDESCRIPTION")
			for _, n := range names {
				j := jails[n]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, dash(strings.Join(j.Aliases, ",")), source(j), j.Type, j.Network, limits(j), j.Description)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	var showJSON bool
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one jail (by name or alias) with every setting",
		Args:  exactArgs(1, "one jail name or alias"),
		RunE: func(cmd *cobra.Command, args []string) error {
			jails, err := a.jails()
			if err != nil {
				return err
			}
			j, ok := conf.Lookup(jails, args[0])
			if !ok {
				return fmt.Errorf("show jail: no jail %q in %s (see 'jailmgr jail list')", args[0], a.configPath)
			}
			if showJSON {
				return writeJSON(a, j)
			}
			fmt.Fprintf(a.stdout, "name:         %s\naliases:      %s\ndescription:  %s\nsource:       %s\ntype:         %s\nusers:        %s\ngroups:       %s\nroot-users:   %s\nroot-groups:  %s\nmounts:       %s\nbinds:        %s\nhostname:     %s\nnetwork:      %s\nlimits:       %s\nseccomp:      %s\ncapabilities: %s\nenvironment:  %s\ndefined at:   %s:%d\n",
				j.Name, dash(strings.Join(j.Aliases, ", ")), dash(j.Description), source(j), j.Type, dash(strings.Join(j.Users, ", ")),
				dash(strings.Join(j.Groups, ", ")), dash(strings.Join(j.RootUsers, ", ")), dash(strings.Join(j.RootGroups, ", ")),
				strings.Join(j.Mounts, ", "), binds(j), dash(j.Hostname), j.Network, limits(j), j.Seccomp, strings.Join(j.Capabilities, ", "),
				j.Environment, j.File, j.Line)
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	cmd.AddCommand(list, show)
	return cmd
}

// jails loads and validates the configured jails: jailmgr's own and the
// chroots of schroot's configuration.
// Through a setuid jailmgr, a user sees the jails they may use, not the
// whole configuration (which root may keep unreadable).
func (a *app) jails() (map[string]*conf.Jail, error) {
	c, err := conf.Load(a.configPath)
	if err != nil {
		return nil, err
	}
	jails, err := a.allJails(c)
	if err != nil || !privileged.on {
		return jails, err
	}
	user, err := session.Caller()
	if err != nil {
		return nil, err
	}
	for n, j := range jails {
		if session.CheckAccess(j, user, false) != nil {
			delete(jails, n)
		}
	}
	return jails, nil
}

// allJails is the configuration's jails with schroot's chroots beside them.
func (a *app) allJails(c *conf.Config) (map[string]*conf.Jail, error) {
	jails, err := c.Jails(nil)
	if err != nil {
		return nil, err
	}
	_, more, err := a.schrootJails(jails)
	if err != nil {
		return nil, err
	}
	for n, j := range more {
		jails[n] = j
	}
	return jails, nil
}

// schrootJails reads schroot's configuration (JAILMGR_SCHROOT_DIR, else
// /etc/schroot) and makes a jail of each chroot jailmgr can run, as
// 'jailmgr schroot -c NAME' would run it. A name or alias jailmgr's own
// configuration has taken is an error; a chroot whose setup files cannot
// be read is one too.
func (a *app) schrootJails(own map[string]*conf.Jail) (*conf.SchrootConfig, map[string]*conf.Jail, error) {
	sc, err := conf.LoadSchroot(a.schrootDir)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]*conf.Jail{}
	var errs []error
	for _, name := range sortedKeys(sc.Chroots) {
		ch := sc.Chroots[name]
		if j, ok := conf.Lookup(own, name); ok {
			errs = append(errs, &conf.Error{File: ch.File, Line: ch.Line, What: fmt.Sprintf("schroot chroot %q clashes with jail %q (%s:%d); rename one", name, j.Name, j.File, j.Line)})
			continue
		}
		j, _, err := sc.Jail(ch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = j
	}
	return sc, out, errors.Join(errs...)
}

func source(j *conf.Jail) string {
	if j.Image != "" {
		return "image " + j.Image
	}
	if j.Tarball != "" {
		return "archive " + j.Tarball
	}
	return "directory " + j.Directory
}

func limits(j *conf.Jail) string {
	var l []string
	if j.Memory > 0 {
		l = append(l, "memory "+humanSize(j.Memory))
	}
	if j.CPUs > 0 {
		l = append(l, fmt.Sprintf("cpus %g", j.CPUs))
	}
	if j.Pids > 0 {
		l = append(l, fmt.Sprintf("pids %d", j.Pids))
	}
	return dash(strings.Join(l, ", "))
}

func binds(j *conf.Jail) string {
	var b []string
	for _, x := range j.Binds {
		s := x.Source + ":" + x.Target
		if x.ReadOnly {
			s += ":ro"
		}
		b = append(b, s)
	}
	return dash(strings.Join(b, ", "))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
