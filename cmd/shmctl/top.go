package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/shm"
)

// topSample is one topic's counters at one instant.
type topSample struct {
	at        time.Time
	frames    uint64 // log: published frames; last-value: table version
	bytes     uint64
	maxLag    uint64
	subs      int
	lost      uint64
	publisher string
	kind      string
	err       string
}

func sampleTopics(e *env) (map[string]topSample, []string, error) {
	entries, err := shm.List(e.opts)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]topSample)
	var names []string
	for _, en := range entries {
		s := topSample{at: time.Now()}
		names = append(names, en.Name)
		if en.Err != nil {
			s.kind, s.err = "invalid", en.Err.Error()
			out[en.Name] = s
			continue
		}
		s.kind = kindName(en.Header.Kind)
		name := strings.TrimSuffix(strings.TrimSuffix(en.Name, ring.LogSuffix), ring.LastValueSuffix)
		switch en.Header.Kind {
		case ring.KindLog:
			lg, err := ring.OpenLog(e.opts, name)
			if err != nil {
				s.err = err.Error()
				break
			}
			s.frames, s.bytes, s.publisher = lg.PublishedFrames(), lg.Published(), liveness(lg.Publisher())
			for _, sub := range lg.Subscribers() {
				if sub.Status != ring.SlotActive {
					continue
				}
				s.subs++
				s.maxLag = max(s.maxLag, sub.Lag)
				s.lost += sub.LossFrames
			}
			lg.Close()
		case ring.KindLastValue:
			r, err := ring.OpenLastValue(e.opts, name)
			if err != nil {
				s.err = err.Error()
				break
			}
			s.frames = r.TableVersion()
			r.Close()
		}
		out[en.Name] = s
	}
	return out, names, nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func topCmd(e *env) *cobra.Command {
	var interval time.Duration
	var count int
	c := &cobra.Command{
		Use:   "top",
		Short: "Live per-topic rates and subscriber lag, refreshed in place (like AeronStat)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usageErr("--interval %v: must be positive", interval)
			}
			tty := isTerminal(e.stdout)
			prev, _, err := sampleTopics(e)
			if err != nil {
				return err
			}
			ticker := time.NewTicker(interval)
			defer ticker.Stop()
			for i := 0; count <= 0 || i < count; i++ {
				select {
				case <-e.interrupt:
					return nil
				case <-ticker.C:
				}
				cur, names, err := sampleTopics(e)
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				if tty {
					buf.WriteString("\x1b[H\x1b[2J") // home, clear: refresh in place
				}
				fmt.Fprintf(&buf, "shmctl top  %s  %s  every %v\n", e.opts.Dir(), time.Now().Format(time.TimeOnly), interval)
				tw := tabwriter.NewWriter(&buf, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TOPIC\tKIND\tPUBLISHER\tFRAMES/S\tMB/S\tSUBS\tMAX LAG B\tLOST\tERROR")
				for _, n := range names {
					c, p := cur[n], prev[n]
					var fps, mbps float64
					if dt := c.at.Sub(p.at).Seconds(); dt > 0 && c.frames >= p.frames && c.bytes >= p.bytes {
						fps = float64(c.frames-p.frames) / dt
						mbps = float64(c.bytes-p.bytes) / dt / 1e6
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.2f\t%d\t%d\t%d\t%s\n", n, c.kind, c.publisher, fps, mbps, c.subs, c.maxLag, c.lost, c.err)
				}
				tw.Flush()
				if !tty {
					buf.WriteString("\n")
				}
				if _, err := e.stdout.Write(buf.Bytes()); err != nil {
					return err
				}
				prev = cur
			}
			return nil
		},
	}
	c.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval")
	c.Flags().IntVar(&count, "count", 0, "stop after this many refreshes (0: until interrupted)")
	return c
}
