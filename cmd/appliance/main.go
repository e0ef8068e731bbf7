// Command appliance is the Tapewire daemon and its operator subcommands.
//
// Each subcommand group lives in its own file and registers itself from an
// init function with register (see wal.go), so adding `run`, `demo`,
// `config` or `user` means adding a file, not editing this one.
//
// Exit codes: 0 success, 1 an error (bad usage, I/O), 3 the data examined is
// corrupt (see exitCorrupt).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// exitCorrupt is the exit code of a command that found corrupt data, so
// scripts can tell "damaged" from "could not run".
const exitCorrupt = 3

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// commandFactories are the top-level subcommands, added by register.
var commandFactories []func() *cobra.Command

// register adds a top-level subcommand; call it from an init function.
func register(newCommand func() *cobra.Command) {
	commandFactories = append(commandFactories, newCommand)
}

// newRootCommand builds the command tree. Output goes to stdout and stderr
// so tests can capture it.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "appliance",
		Short:         "Tapewire appliance: durable storage and distribution of exchange data",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, f := range commandFactories {
		root.AddCommand(f())
	}
	return root
}

// run executes the command line args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "appliance:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
