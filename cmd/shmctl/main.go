package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/shm"
)

// Exit codes (see doc.go).
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitNotFound = 3
	exitInvalid  = 4
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// codeFor maps an error to its exit code.
func codeFor(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, os.ErrNotExist), errors.Is(err, ring.ErrNotFound):
		return exitNotFound
	case errors.Is(err, shm.ErrNotSegment), errors.Is(err, shm.ErrLayout), errors.Is(err, shm.ErrInitializing),
		errors.Is(err, shm.ErrCorrupt), errors.Is(err, shm.ErrTruncated), errors.Is(err, shm.ErrKind),
		errors.Is(err, shm.ErrOwner), errors.Is(err, shm.ErrMode), errors.Is(err, shm.ErrFault),
		errors.Is(err, ring.ErrLayoutMismatch):
		return exitInvalid
	}
	return exitFailed
}

// env is what every command needs: where segments are and where to write.
type env struct {
	opts   shm.Options
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// interrupt is closed when the command should stop (SIGINT/SIGTERM).
	interrupt <-chan struct{}
}

func main() {
	stop := make(chan struct{})
	notifyInterrupt(stop)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, stop))
}

// run executes one shmctl command line and returns its exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, interrupt <-chan struct{}) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, interrupt: interrupt}
	root := &cobra.Command{
		Use:           "shmctl",
		Short:         "Inspect and operate Tapewire shared-memory topics",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.Help()
			return usageErr("no command given")
		},
	}
	root.PersistentFlags().StringVar(&e.opts.Base, "base", shm.DefaultBase, "directory holding namespaces")
	root.PersistentFlags().StringVar(&e.opts.Namespace, "namespace", shm.DefaultNamespace, "namespace (subdirectory of --base)")
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr("%v", err) })
	root.AddCommand(listCmd(e), infoCmd(e), tailCmd(e), topCmd(e), lvcCmd(e), gcCmd(e), pubCmd(e))
	// Tools read tables in mappings someone else could truncate: a SIGBUS
	// becomes an error (exit code 4), not a crash.
	err := shm.Guard(root.Execute)
	code := codeFor(err)
	if err != nil {
		// cobra's own errors (unknown command, arity) are usage errors.
		var ee *exitError
		if !errors.As(err, &ee) && isCobraUsage(err) {
			code = exitUsage
		}
		fmt.Fprintf(stderr, "shmctl: %v\n", err)
	}
	return code
}

// isCobraUsage recognizes the errors cobra returns for a bad command line.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
