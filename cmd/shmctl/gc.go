package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/shm"
)

// gcGrace spares unreadable files younger than this: their creator may still
// be initializing them.
const gcGrace = 10 * time.Second

// gcDecision is the pure rule of gc: remove a segment only when nobody has it
// mapped and its creator is dead (or, for a file whose header cannot be read,
// when it is older than the grace period).
func gcDecision(headerOK, creatorAlive, inUse bool, age time.Duration) (remove bool, why string) {
	switch {
	case inUse:
		return false, "mapped by a live process"
	case headerOK && creatorAlive:
		return false, "creator alive"
	case headerOK:
		return true, "creator dead and nobody maps it"
	case age < gcGrace:
		return false, fmt.Sprintf("unreadable but only %v old (creator may still be initializing it)", age.Round(time.Millisecond))
	}
	return true, "unreadable and nobody maps it"
}

func gcCmd(e *env) *cobra.Command {
	var dryRun bool
	c := &cobra.Command{
		Use:   "gc",
		Short: "Remove segments whose creator is dead and that nobody maps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, err := shm.List(e.opts)
			if err != nil {
				return err
			}
			var failed error
			for _, en := range entries {
				inUse, err := shm.InUse(en.Path)
				if err != nil {
					fmt.Fprintf(e.stdout, "keep %s: cannot tell whether it is in use: %v\n", en.Name, err)
					continue
				}
				var age time.Duration
				if fi, err := os.Lstat(en.Path); err == nil {
					age = time.Since(fi.ModTime())
				}
				headerOK := en.Err == nil
				remove, why := gcDecision(headerOK, headerOK && shm.Alive(en.Header.Creator()), inUse, age)
				switch {
				case !remove:
					fmt.Fprintf(e.stdout, "keep %s: %s\n", en.Name, why)
				case dryRun:
					fmt.Fprintf(e.stdout, "would remove %s: %s\n", en.Name, why)
				default:
					if err := os.Remove(en.Path); err != nil {
						failed = errors.Join(failed, err)
						continue
					}
					fmt.Fprintf(e.stdout, "removed %s: %s\n", en.Name, why)
				}
			}
			return failed
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be removed")
	return c
}
