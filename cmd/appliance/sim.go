package main

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/shm"
	"github.com/tapewire/tapewire/sim"
)

func init() { register(newSimCommand) }

// newSimCommand is `appliance sim`: the simulated exchange as its own
// process, a real producer on the appliance's topics (the demo starts it).
func newSimCommand() *cobra.Command {
	cfg := sim.RunConfig{Topics: sim.DefaultTopics}
	var traders string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the simulated exchange: quotes, order matching and accounts on the appliance's topics",
		Long: `sim attaches to existing log topics (the appliance creates them) as their
publisher: it publishes instrument reference data and a random-walk quote stream
on the ticks topic, reads order, cancel and transfer requests from the requests
topic, and publishes the resulting orders, trades, positions, accounts, transfers
and notifications on the trades topic. It stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if traders != "" {
				cfg.Traders = strings.Split(traders, ",")
			}
			cfg.Log = cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			st, err := sim.Run(ctx, cfg)
			fmt.Fprintf(cmd.ErrOrStderr(), "simulator: %d ticks, %d requests (%d malformed), %d trading events\n",
				st.Ticks, st.Requests, st.Malformed, st.Events)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Shm.Base, "base", shm.DefaultBase, "directory holding shm namespaces")
	f.StringVar(&cfg.Shm.Namespace, "namespace", shm.DefaultNamespace, "shm namespace of the topics")
	f.StringVar(&cfg.Topics.Ticks, "ticks-topic", sim.DefaultTopics.Ticks, "topic for reference data and quotes")
	f.StringVar(&cfg.Topics.Trades, "trades-topic", sim.DefaultTopics.Trades, "topic for orders, trades, positions, accounts")
	f.StringVar(&cfg.Topics.Requests, "requests-topic", sim.DefaultTopics.Requests, "topic of order, cancel and transfer requests")
	f.IntVar(&cfg.Instruments, "instruments", sim.MaxInstruments, fmt.Sprintf("instruments to simulate (1..%d)", sim.MaxInstruments))
	f.Float64Var(&cfg.TicksPerSecond, "rate", 200, fmt.Sprintf("quotes per second over all instruments (at most %d)", sim.MaxTicksPerSecond))
	f.Uint64Var(&cfg.Seed, "seed", 0, "random seed of the market (0: from the clock)")
	f.StringVar(&traders, "traders", "", "comma-separated user ids the simulator trades for by itself")
	f.Float64Var(&cfg.TraderOrdersPerSecond, "trader-rate", 2, "orders per second per simulated trader")
	f.DurationVar(&cfg.AttachTimeout, "attach-timeout", 10*time.Second, "how long to wait for the topics to exist and be free to publish")
	f.Float64Var(&cfg.Exchange.InitialBalance, "initial-balance", sim.DefaultInitialBalance, "pre_balance of each new account")
	return cmd
}
