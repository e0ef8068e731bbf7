package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/appliance"
)

func init() {
	register(newRunCommand)
	register(newConfigCommand)
}

// overrides are the flags that override config keys.
type overrides struct {
	dataDir, adminListen, shmBase, shmNamespace string
	storageCPU                                  int
	sets                                        []string
}

func (o *overrides) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "", "override node.data_dir")
	f.StringVar(&o.adminListen, "admin-listen", "", "override admin.listen (host:port; empty string in the file disables the API)")
	f.StringVar(&o.shmBase, "shm-base", "", "override shm.base")
	f.StringVar(&o.shmNamespace, "shm-namespace", "", "override shm.namespace")
	f.IntVar(&o.storageCPU, "storage-cpu", -2, "override storage.cpu (-1: unpinned)")
	f.StringArrayVar(&o.sets, "set", nil, "override any scalar key: --set storage.batch_buffers=32 (repeatable)")
}

func (o *overrides) apply(cfg *appliance.Config) error {
	pairs := [][2]string{}
	if o.dataDir != "" {
		pairs = append(pairs, [2]string{"node.data_dir", o.dataDir})
	}
	if o.adminListen != "" {
		pairs = append(pairs, [2]string{"admin.listen", o.adminListen})
	}
	if o.shmBase != "" {
		pairs = append(pairs, [2]string{"shm.base", o.shmBase})
	}
	if o.shmNamespace != "" {
		pairs = append(pairs, [2]string{"shm.namespace", o.shmNamespace})
	}
	if o.storageCPU != -2 {
		pairs = append(pairs, [2]string{"storage.cpu", fmt.Sprint(o.storageCPU)})
	}
	for _, s := range o.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("--set %q: want KEY=VALUE", s)
		}
		pairs = append(pairs, [2]string{k, v})
	}
	for _, p := range pairs {
		if err := cfg.Set(p[0], p[1]); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func newRunCommand() *cobra.Command {
	var path string
	var o overrides
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the appliance with a configuration file",
		Long: `run opens the node (recovering the store and the WAL, reattaching to the
topics and persisting whatever producers published while it was down), starts
the storage, last-value and checkpoint tenants and the admin API, and serves
until SIGINT or SIGTERM. The first signal stops gracefully (drain the rings,
commit, checkpoint, close); a second one exits at once, which is crash-safe:
everything acknowledged is in the WAL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := appliance.DefaultConfig()
			if path != "" {
				var err error
				if cfg, err = appliance.ReadConfig(path); err != nil {
					return err
				}
			}
			if err := o.apply(&cfg); err != nil {
				return err
			}
			return serve(cmd.ErrOrStderr(), cfg, nil)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file (TOML; see `appliance config default`)")
	o.register(cmd)
	return cmd
}

// serve runs a node until the first SIGINT/SIGTERM, then stops it
// gracefully; a second signal exits the process at once. ready, if set,
// runs once the node serves.
func serve(stderr io.Writer, cfg appliance.Config, ready func(*appliance.Node) error) error {
	runtime.GOMAXPROCS(appliance.RecommendedGOMAXPROCS())
	n, err := appliance.Open(cfg, appliance.Options{Log: stderr})
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		n.Close()
		return err
	}
	fmt.Fprintf(stderr, "appliance: serving; admin API http://%s (status /v1/status, metrics /metrics)\n", n.AdminAddr())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if ready != nil {
		if err := ready(n); err != nil {
			fmt.Fprintf(stderr, "appliance: %v\n", err)
		}
	}
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "appliance: %v: stopping (drain, commit, checkpoint); send it again to exit at once\n", s)
			cancel()
		case <-ctx.Done():
			return
		}
		s := <-sigs
		fmt.Fprintf(stderr, "appliance: %v again: exiting now (acknowledged events are in the WAL)\n", s)
		os.Exit(130)
	}()
	if err := n.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "appliance: stopped cleanly (rings drained, WAL closed, store checkpointed)")
	return nil
}

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Print or check configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print every key with its default, unit, limits and meaning (a loadable TOML file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), appliance.DefaultConfigTOML())
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file and print it with every key resolved",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := appliance.LoadConfig(args[0])
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), cfg.TOML())
			return err
		},
	})
	return cmd
}
