package main

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
)

func lvcCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "lvc", Short: "Read last-value topics"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list TOPIC",
		Short: "List a last-value topic's keys with slot and version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openLVC(e, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			entries := r.Entries()
			if asJSON {
				if entries == nil {
					entries = []ring.LastValueEntry{}
				}
				return writeJSON(e, entries)
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tSLOT\tVERSION")
			for _, en := range entries {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", en.Key, en.Slot, en.Version)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	get := &cobra.Command{
		Use:   "get TOPIC KEY",
		Short: `Print KEY's latest value as a JSON line {"key","slot","version","frame"}`,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openLVC(e, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			slot, err := r.Lookup(args[1])
			if err != nil {
				return err
			}
			buf := make([]byte, r.MaxValueBytes())
			n, version, err := r.GetSlot(slot, buf)
			if err != nil {
				return err
			}
			line := []byte(`{"key":` + strconv.Quote(args[1]) + `,"slot":` + strconv.Itoa(slot) + `,"version":` + strconv.FormatUint(version, 10))
			if rendered, err := schema.AppendJSONRedacted(nil, buf[:n]); err == nil {
				line = append(append(line, `,"frame":`...), rendered...)
			} else {
				// Not a frame schema can render: show the bytes, and why —
				// only the header's when the rest may hold a secret.
				shown, redacted := buf[:n], ""
				if schema.MayHoldSecrets(shown) {
					shown, redacted = shown[:min(n, schema.HeaderSize)], `,"bytes_redacted":true`
				}
				line = append(line, `,"bytes_base64":"`+base64.StdEncoding.EncodeToString(shown)+`"`+redacted+`,"bytes_len":`+strconv.Itoa(n)+`,"frame_error":`+strconv.Quote(err.Error())...)
			}
			line = append(line, "}\n"...)
			_, err = e.stdout.Write(line)
			return err
		},
	}
	c.AddCommand(list, get)
	return c
}

func openLVC(e *env, topic string) (*ring.LastValueReader, error) {
	kind, name, err := resolve(e, topic)
	if err != nil {
		return nil, err
	}
	if kind != ring.KindLastValue {
		return nil, usageErr("%s is a log topic, not a last-value topic", topic)
	}
	return ring.OpenLastValue(e.opts, name)
}
