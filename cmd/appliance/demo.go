package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/appliance"
)

func init() { register(newDemoCommand) }

// demoUsers are created on the demo's first start; the simulator trades for
// them, so their orders, fills, accounts and positions appear at once.
var demoUsers = []struct{ id, account string }{{"alice", "A-1001"}, {"bob", "B-2002"}}

func newDemoCommand() *cobra.Command {
	var dir string
	var rate float64
	var noSim bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a complete node on an embedded configuration with the simulated exchange",
		Long: `demo runs one appliance node on the embedded default configuration: data under
--dir, topics in the shm namespace "demo", the admin API on 127.0.0.1:7070 (or
a free port when that one is taken). It starts the simulated exchange
(` + "`appliance sim`" + `) as a child process publishing quotes and trading for the
demo users, creates those users on the first start and prints their
credentials, then prints the admin URL and shmctl commands to try.
Ctrl-C stops the simulator and then the node, cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := appliance.DemoConfig(dir)
			if err != nil {
				return err
			}
			if !portFree(cfg.Admin.Listen) {
				cfg.Admin.Listen = "127.0.0.1:0"
			}
			out := cmd.ErrOrStderr()
			var child *simChild
			ready := func(n *appliance.Node) error {
				creds, err := demoCredentials(n, dir)
				if err != nil {
					return fmt.Errorf("demo users: %w", err)
				}
				if !noSim {
					child = startSimulator(out, cfg, rate)
				}
				printDemoBanner(cmd.OutOrStdout(), n, cfg, creds, child != nil)
				return nil
			}
			stopSim := func() {
				if child != nil {
					child.stop()
					child = nil
				}
			}
			defer stopSim()
			return serve(out, cfg, func(n *appliance.Node) error {
				n.OnStop(stopSim) // the producer goes first, then the node drains
				return ready(n)
			})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "appliance-data", "directory for the demo's data (created if missing)")
	cmd.Flags().Float64Var(&rate, "rate", 200, "quotes per second the simulator publishes")
	cmd.Flags().BoolVar(&noSim, "no-sim", false, "do not start the simulator")
	return cmd
}

func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// demoCredentials creates the demo users on the first start, keeping their
// generated passwords in <dir>/credentials.txt (0600), and returns them.
func demoCredentials(n *appliance.Node, dir string) ([][2]string, error) {
	path := filepath.Join(dir, "credentials.txt")
	var creds [][2]string
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if id, pw, ok := strings.Cut(sc.Text(), " "); ok {
				creds = append(creds, [2]string{id, pw})
			}
		}
		f.Close()
	}
	users := n.Users()
	have := map[string]bool{}
	for _, c := range creds {
		have[c[0]] = true
	}
	for _, u := range demoUsers {
		if have[u.id] {
			continue
		}
		pw := randomPassword()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := users.Register(ctx, u.id, pw)
		if err == nil {
			err = users.Bind(ctx, u.id, u.account)
		}
		cancel()
		if errors.Is(err, appliance.ErrUserExists) {
			creds = append(creds, [2]string{u.id, "(registered earlier; password not recoverable)"})
			continue
		}
		if err != nil {
			return nil, err
		}
		creds = append(creds, [2]string{u.id, pw})
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(f, "%s %s\n", u.id, pw)
		f.Close()
	}
	return creds, nil
}

func randomPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 14)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// simChild is the simulator process.
type simChild struct {
	proc   *os.Process
	exited chan error
}

// stop asks the simulator to stop (SIGTERM) and waits for it, killing it
// after simStopTimeout.
func (c *simChild) stop() {
	_ = c.proc.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(simStopTimeout):
		_ = c.proc.Kill()
		<-c.exited
	}
}

// simStopTimeout bounds how long the demo waits for the simulator to exit.
const simStopTimeout = 5 * time.Second

// startSimulator starts `appliance sim` as a child process; on failure it
// says the simulator is unavailable and the demo goes on without it.
func startSimulator(stderr io.Writer, cfg appliance.Config, rate float64) *simChild {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "demo: simulator unavailable: %v\n", err)
		return nil
	}
	traders := make([]string, len(demoUsers))
	for i, u := range demoUsers {
		traders[i] = u.id
	}
	c := exec.Command(exe, "sim", "--base", cfg.Shm.Base, "--namespace", cfg.Shm.Namespace,
		"--rate", fmt.Sprint(rate), "--traders", strings.Join(traders, ","))
	c.Stdout, c.Stderr = stderr, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := c.Start(); err != nil {
		fmt.Fprintf(stderr, "demo: simulator unavailable: %v\n", err)
		return nil
	}
	child := &simChild{proc: c.Process, exited: make(chan error, 1)}
	go func() { child.exited <- c.Wait() }()
	select {
	case err := <-child.exited:
		fmt.Fprintf(stderr, "demo: simulator unavailable: `appliance sim` exited at once (%v); the node runs without it\n", err)
		return nil
	case <-time.After(300 * time.Millisecond):
	}
	return child
}

func printDemoBanner(w io.Writer, n *appliance.Node, cfg appliance.Config, creds [][2]string, sim bool) {
	admin := "http://" + n.AdminAddr()
	shmctl := fmt.Sprintf("go run ./cmd/shmctl --base %s --namespace %s", cfg.Shm.Base, cfg.Shm.Namespace)
	fmt.Fprintf(w, "\nTapewire demo\n=============\n")
	fmt.Fprintf(w, "data        %s\n", cfg.Node.DataDir)
	fmt.Fprintf(w, "topics      %s/%s\n", cfg.Shm.Base, cfg.Shm.Namespace)
	if sim {
		fmt.Fprintf(w, "simulator   running (quotes on ticks, fills for the demo users on trades)\n")
	} else {
		fmt.Fprintf(w, "simulator   unavailable (see above)\n")
	}
	fmt.Fprintf(w, "\nusers (passwords kept in %s):\n", filepath.Join(filepath.Dir(cfg.Node.DataDir), "credentials.txt"))
	for _, c := range creds {
		fmt.Fprintf(w, "  %-8s %s\n", c[0], c[1])
	}
	fmt.Fprintf(w, "\nadmin API   %s\n", admin)
	fmt.Fprintf(w, "  curl %s/v1/status\n", admin)
	fmt.Fprintf(w, "  curl %s/metrics\n", admin)
	fmt.Fprintf(w, "  curl '%s/v1/events?topic=ticks&limit=5'\n", admin)
	fmt.Fprintf(w, "  curl '%s/v1/events?topic=trades&limit=5'\n", admin)
	fmt.Fprintf(w, "  curl %s/v1/state/quote/SHFE.cu2501\n", admin)
	fmt.Fprintf(w, "  curl %s/v1/state/account/alice/\n", admin)
	fmt.Fprintf(w, "  curl %s/v1/users\n", admin)
	fmt.Fprintf(w, "\nshm topics:\n")
	fmt.Fprintf(w, "  %s list\n", shmctl)
	fmt.Fprintf(w, "  %s top\n", shmctl)
	fmt.Fprintf(w, "  %s tail ticks\n", shmctl)
	fmt.Fprintf(w, "  %s lvc get quotes SHFE.cu2501\n", shmctl)
	fmt.Fprintf(w, "\nCtrl-C stops the simulator and the node cleanly.\n\n")
}
