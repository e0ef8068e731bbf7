package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/tapewire/tapewire/appliance"
	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/shm"
)

var nodeProfile = flag.String("node-cpuprofile", "", "write a CPU profile of each appliance child process to this `path` (the last child's survives: use with -only)")

// The appliance runs in its own process, as deployed: producers and the
// node do not share a Go scheduler. runNodeChild is that process.
func runNodeChild(configPath string) error {
	cfg, err := appliance.LoadConfig(configPath)
	if err != nil {
		return err
	}
	runtime.GOMAXPROCS(appliance.RecommendedGOMAXPROCS())
	if path := *nodeProfile; path != "" {
		// One profile per node child: the last one started overwrites the
		// earlier ones, so use -only to pick the workload.
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	n, err := appliance.Open(cfg, appliance.Options{Log: os.Stderr})
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		n.Close()
		return err
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return n.Run(ctx)
}

// nodeProcess is a running appliance child.
type nodeProcess struct {
	cfg    appliance.Config
	stop   func() error
	dump   func() string // the child's goroutines (SIGQUIT) and everything it logged; ends it
	stderr *strings.Builder
}

// startNodeProcess starts an appliance child on a fresh configuration.
func (e *env) startNodeProcess(adjust ...func(*appliance.Config)) (*nodeProcess, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	for _, f := range adjust {
		f(&cfg)
	}
	path := filepath.Join(filepath.Dir(cfg.Node.DataDir), "tapewire.toml")
	if err := os.WriteFile(path, []byte(cfg.TOML()), 0o644); err != nil {
		return nil, err
	}
	args := []string{"-node-config", path}
	if *nodeProfile != "" {
		args = append(args, "-node-cpuprofile", *nodeProfile)
	}
	cmd := harness.Child("node", args...)
	cmd.Stdout = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("node child said %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("node child: %v: %s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("node child not ready within 60 s: %s", stderr.String())
	}
	return &nodeProcess{cfg: cfg, stderr: &stderr, dump: func() string {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		_ = cmd.Wait()
		return stderr.String()
	}, stop: func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		// The node's files (GiBs after an ingest run) go with it: left in
		// the page cache they made the kernel reclaim memory on behalf of
		// later workloads (the restart's Open took 1.5x longer, with twice
		// the CPU, after the ingest workload than on its own).
		os.RemoveAll(filepath.Dir(cfg.Node.DataDir))
		if err != nil {
			return fmt.Errorf("node child: %v: %s", err, stderr.String())
		}
		return nil
	}}, nil
}

// runLoadGenChild publishes to "load" as fast as possible until SIGTERM.
func runLoadGenChild(base, namespace string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	_, err := appliance.RunLoadGen(ctx, appliance.LoadGenConfig{Shm: shm.Options{Base: base, Namespace: namespace}, Topic: "load", SizeBytes: 150, Seed: 9})
	return err
}
