package main

import (
	"bufio"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
)

// tailPoll is how long a following tail waits between checks of the
// interrupt channel.
const tailPoll = 100 * time.Millisecond

func tailCmd(e *env) *cobra.Command {
	var follow bool
	var from int64
	var limit int
	c := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print a log topic's frames as JSON lines (an observer: never holds the publisher back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, err := resolve(e, args[0])
			if err != nil {
				return err
			}
			if kind != ring.KindLog {
				return usageErr("tail %s: a last-value topic has no stream; use `shmctl lvc list`", args[0])
			}
			lg, err := ring.OpenLog(e.opts, name)
			if err != nil {
				return err
			}
			start := uint64(from)
			if from < 0 {
				start = oldestBoundary(lg)
			}
			lg.Close()
			sub, err := ring.OpenSubscriber(e.opts, name, ring.SubscriberOptions{Observer: true, Resume: true, From: start})
			if err != nil {
				return err
			}
			defer sub.Close()
			out := bufio.NewWriterSize(e.stdout, 64<<10)
			defer out.Flush()
			var line []byte
			printed, invalid := 0, 0
			h := func(frame []byte, pos uint64) {
				if limit > 0 && printed >= limit {
					return
				}
				var err error
				line, err = schema.AppendJSONRedacted(line[:0], frame)
				if err != nil {
					invalid++
					fmt.Fprintf(e.stderr, "shmctl: tail %s: frame at position %d: %v\n", name, pos, err)
					return
				}
				line = append(line, '\n')
				out.Write(line)
				printed++
			}
			for limit <= 0 || printed < limit {
				batch := 256
				if limit > 0 {
					batch = min(batch, limit-printed)
				}
				n, err := sub.Poll(h, batch)
				if err != nil {
					return err
				}
				if n > 0 {
					continue
				}
				if !follow {
					break
				}
				if err := out.Flush(); err != nil {
					return err
				}
				select {
				case <-e.interrupt:
					return reportLoss(e, sub, name)
				default:
				}
				if err := sub.Wait(tailPoll); err != nil && !errors.Is(err, ring.ErrTimeout) {
					if !errors.Is(err, ring.ErrPublisherGone) {
						return err
					}
					time.Sleep(tailPoll) // no publisher: keep following until one attaches
				}
			}
			return reportLoss(e, sub, name)
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new frames until interrupted")
	c.Flags().Int64Var(&from, "from", -1, "start at this position (a frame boundary); default: the oldest known boundary")
	c.Flags().IntVarP(&limit, "count", "n", 0, "stop after this many frames (0: no limit)")
	return c
}

func reportLoss(e *env, sub *ring.Subscriber, name string) error {
	if lost, bytes, laps := sub.Loss(); laps > 0 {
		fmt.Fprintf(e.stderr, "shmctl: tail %s: lapped %d times by the publisher: %d frames (%d bytes) not shown\n", name, laps, lost, bytes)
	}
	return nil
}

// oldestBoundary is the oldest position tail can know to be a frame
// boundary: 0 while the ring has not wrapped; else the oldest subscriber
// position still held by the ring; else the newest published position.
func oldestBoundary(lg *ring.Log) uint64 {
	published, tail, capacity := lg.Published(), lg.Tail(), lg.Capacity()
	const commitWord = 8
	if tail+commitWord <= capacity {
		return 0
	}
	best := published
	for _, s := range lg.Subscribers() {
		if s.Position <= published && s.Position%schema.FrameAlign == 0 && tail+commitWord <= s.Position+capacity && s.Position < best {
			best = s.Position
		}
	}
	return best
}
