package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
)

func pubCmd(e *env) *cobra.Command {
	var create bool
	var capacity uint64
	var mode string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "pub TOPIC",
		Short: "Publish frames read as JSON lines (shmctl tail's format) from stdin",
		Long: `Publish frames read as JSON lines from stdin, one frame per line, in the form
shmctl tail prints. The publisher assigns sequence numbers; a publish_ns of 0
is stamped with the current time. A bad line stops the command with exit
code 1, naming the line; frames before it stay published.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			opts := ring.PublisherOptions{BackPressureTimeout: timeout}
			p, err := ring.OpenPublisher(e.opts, topic, opts)
			if errors.Is(err, os.ErrNotExist) && create {
				m := ring.Reliable
				switch mode {
				case "reliable":
				case "lossy":
					m = ring.Lossy
				default:
					return usageErr("--mode %q: want reliable or lossy", mode)
				}
				p, err = ring.CreateLog(e.opts, topic, ring.LogConfig{CapacityBytes: capacity, Mode: m}, opts)
			}
			if err != nil {
				return err
			}
			defer p.Close()
			sc := bufio.NewScanner(e.stdin)
			sc.Buffer(make([]byte, 64<<10), schema.MaxJSONBytes+1)
			var frame []byte
			lineNo, published := 0, 0
			for sc.Scan() {
				lineNo++
				if len(sc.Bytes()) == 0 {
					continue
				}
				frame, err = schema.FrameFromJSON(sc.Bytes(), frame[:0])
				if err != nil {
					return fmt.Errorf("stdin line %d: %w (published %d frames before it)", lineNo, err, published)
				}
				if binary.LittleEndian.Uint64(frame[16:24]) == 0 {
					binary.LittleEndian.PutUint64(frame[16:24], uint64(time.Now().UnixNano()))
				}
				if _, err := p.Offer(frame); err != nil {
					return fmt.Errorf("stdin line %d: %w (published %d frames before it)", lineNo, err, published)
				}
				published++
			}
			if err := sc.Err(); err != nil {
				return fmt.Errorf("stdin after line %d: %w", lineNo, err)
			}
			fmt.Fprintf(e.stderr, "shmctl: pub %s: published %d frames\n", topic, published)
			return nil
		},
	}
	c.Flags().BoolVar(&create, "create", false, "create the topic if it does not exist")
	c.Flags().Uint64Var(&capacity, "capacity", 1<<20, "data area bytes of a created topic (power of two)")
	c.Flags().StringVar(&mode, "mode", "reliable", "mode of a created topic: reliable or lossy")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long a frame may wait for a reliable subscriber")
	return c
}
