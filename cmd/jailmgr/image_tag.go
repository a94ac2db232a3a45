package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) imageTagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag REF NAME:TAG",
		Short: "Point a tag at an image version, or move it there",
		Long: `Point the tag NAME:TAG at the version REF names (NAME, NAME:VERSION or
another tag, which is followed once). A tag that exists is moved, atomically.
TAG is letters, digits, '.', '-' and '_', and not all digits. NAME:TAG then
works wherever an image reference does.`,
		Args: exactArgs(2, "an image reference and a tag, e.g. 'bookworm:3 bookworm:stable'"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			img, prev, err := st.Tag(args[0], args[1])
			if err != nil {
				return err
			}
			switch {
			case a.quiet:
			case prev == "":
				fmt.Fprintf(a.stderr, "tagged %s: %s\n", args[1], img.Ref())
			case prev == img.Ref():
				fmt.Fprintf(a.stderr, "%s already points at %s\n", args[1], img.Ref())
			default:
				fmt.Fprintf(a.stderr, "moved %s from %s to %s\n", args[1], prev, img.Ref())
			}
			return nil
		},
	}
}

func (a *app) imageUntagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "untag NAME:TAG",
		Short: "Remove a tag (the image version it points at stays)",
		Args:  exactArgs(1, "one tag, NAME:TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.storeFromConfig()
			if err != nil {
				return err
			}
			target, err := st.Untag(args[0])
			if err != nil {
				return err
			}
			if !a.quiet {
				fmt.Fprintf(a.stderr, "removed tag %s (it pointed at %s)\n", args[0], target)
			}
			return nil
		},
	}
}
