package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/appliance"
	"github.com/tapewire/tapewire/shm"
)

func init() { register(newLoadgenCommand) }

func newLoadgenCommand() *cobra.Command {
	var cfg appliance.LoadGenConfig
	var wait, ackedPath string
	cmd := &cobra.Command{
		Use:   "loadgen --topic T",
		Short: "Publish mixed events to a topic (a producer for tests and benchmarks)",
		Long: `loadgen attaches to a log topic as its publisher and publishes mixed events
(Tick, Order, Trade, Account, Position) of about --size bytes at --rate events
per second (0: as fast as the ring takes them), --count of them (0: until
SIGINT/SIGTERM).

With --wait durable an event is acknowledged only once the ring's durable
position (advanced by the appliance after its WAL commit) has passed it, and
its sequence number is then appended to --acked-log. At most --window events
wait at once. loadgen survives the appliance being killed and restarted, and
the topic's segment being recreated (it reattaches; events published into the
old segment were never acknowledged). It prints its counts as JSON at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch wait {
			case "none":
			case "durable":
				cfg.WaitDurable = true
			default:
				return fmt.Errorf("--wait %q: want none or durable", wait)
			}
			if ackedPath != "" {
				if !cfg.WaitDurable {
					return fmt.Errorf("--acked-log needs --wait durable")
				}
				f, err := os.OpenFile(ackedPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.AckedLog = f
			}
			cfg.Log = cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			st, err := appliance.RunLoadGen(ctx, cfg)
			writeStats(cmd.OutOrStdout(), st)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Shm.Base, "base", shm.DefaultBase, "directory holding shm namespaces")
	f.StringVar(&cfg.Shm.Namespace, "namespace", shm.DefaultNamespace, "shm namespace of the topic")
	f.StringVar(&cfg.Topic, "topic", "load", "log topic to publish to")
	f.Float64Var(&cfg.RatePerSec, "rate", 0, "offered events per second (open loop); 0 = as fast as possible")
	f.IntVar(&cfg.SizeBytes, "size", 150, "approximate frame bytes per event")
	f.Int64Var(&cfg.Count, "count", 0, "events to publish (0: until a signal)")
	f.StringVar(&wait, "wait", "none", "none, or durable: acknowledge an event once the ring's durable position passed it")
	f.StringVar(&ackedPath, "acked-log", "", "file to append each acknowledged sequence number to (with --wait durable)")
	f.IntVar(&cfg.Window, "window", 256, "events waiting for durability at most (with --wait durable)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the events' contents")
	f.DurationVar(&cfg.AttachTimeout, "attach-timeout", 0, "how long to wait for the topic to (re)appear (default 30s)")
	return cmd
}

func writeStats(w io.Writer, st appliance.LoadGenStats) {
	b, _ := json.Marshal(st)
	fmt.Fprintf(w, "%s\n", b)
}
