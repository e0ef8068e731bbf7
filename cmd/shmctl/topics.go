package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/shm"
)

// resolve finds TOPIC's file: TOPIC.ring, else TOPIC.lvc; a name with either
// suffix is taken as is. It returns the kind and the bare topic name.
func resolve(e *env, topic string) (uint32, string, error) {
	switch {
	case strings.HasSuffix(topic, ring.LogSuffix):
		return ring.KindLog, strings.TrimSuffix(topic, ring.LogSuffix), nil
	case strings.HasSuffix(topic, ring.LastValueSuffix):
		return ring.KindLastValue, strings.TrimSuffix(topic, ring.LastValueSuffix), nil
	}
	if err := shm.CheckName(topic); err != nil {
		return 0, "", usageErr("%v", err)
	}
	for _, k := range []struct {
		kind   uint32
		suffix string
	}{{ring.KindLog, ring.LogSuffix}, {ring.KindLastValue, ring.LastValueSuffix}} {
		if _, err := os.Lstat(filepath.Join(e.opts.Dir(), topic+k.suffix)); err == nil {
			return k.kind, topic, nil
		}
	}
	return 0, "", fmt.Errorf("topic %s in %s: %w", topic, e.opts.Dir(), os.ErrNotExist)
}

func kindName(k uint32) string {
	switch k {
	case ring.KindLog:
		return "log"
	case ring.KindLastValue:
		return "last-value"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// listEntry is one line of `shmctl list`, and its JSON form.
type listEntry struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	SizeBytes    int64  `json:"size_bytes"`
	Mode         string `json:"mode,omitempty"`
	Publisher    string `json:"publisher,omitempty"`
	PublisherPID int    `json:"publisher_pid,omitempty"`
	Published    uint64 `json:"published,omitempty"`
	Frames       uint64 `json:"frames,omitempty"`
	Durable      uint64 `json:"durable,omitempty"`
	Replicated   uint64 `json:"replicated,omitempty"`
	Subscribers  int    `json:"subscribers,omitempty"`
	Keys         int    `json:"keys,omitempty"`
	Version      uint64 `json:"version,omitempty"`
	Error        string `json:"error,omitempty"`
}

// liveness renders a publisher record as "live", "dead", "closed", ...
func liveness(p ring.PublisherInfo) string {
	switch {
	case p.Alive:
		return "live"
	case p.State == ring.PublisherLive:
		return "dead (not yet repaired)"
	}
	return p.State.String()
}

func listCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List topics with kind, size, publisher liveness and positions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, err := shm.List(e.opts)
			if err != nil {
				return err
			}
			var out []listEntry
			for _, en := range entries {
				le := listEntry{Name: en.Name, SizeBytes: en.Size}
				if en.Err != nil {
					le.Kind, le.Error = "invalid", en.Err.Error()
					out = append(out, le)
					continue
				}
				le.Kind = kindName(en.Header.Kind)
				name := strings.TrimSuffix(strings.TrimSuffix(en.Name, ring.LogSuffix), ring.LastValueSuffix)
				switch en.Header.Kind {
				case ring.KindLog:
					lg, err := ring.OpenLog(e.opts, name)
					if err != nil {
						le.Error = err.Error()
						break
					}
					pi := lg.Publisher()
					le.Mode, le.Publisher, le.PublisherPID = lg.Mode().String(), liveness(pi), pi.PID
					le.Published, le.Frames, le.Durable, le.Replicated = lg.Published(), lg.PublishedFrames(), lg.Durable(), lg.Replicated()
					for _, s := range lg.Subscribers() {
						if s.Status == ring.SlotActive {
							le.Subscribers++
						}
					}
					lg.Close()
				case ring.KindLastValue:
					r, err := ring.OpenLastValue(e.opts, name)
					if err != nil {
						le.Error = err.Error()
						break
					}
					le.Keys, le.Version = r.KeyCount(), r.TableVersion()
					r.Close()
				}
				out = append(out, le)
			}
			if asJSON {
				if out == nil {
					out = []listEntry{}
				}
				return writeJSON(e, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tMODE\tPUBLISHER\tPUBLISHED\tFRAMES\tDURABLE\tREPLICATED\tSUBS/KEYS\tERROR")
			for _, l := range out {
				subs := l.Subscribers
				if l.Kind == "last-value" {
					subs = l.Keys
				}
				pub := l.Publisher
				if l.PublisherPID != 0 {
					pub = fmt.Sprintf("%s pid %d", l.Publisher, l.PublisherPID)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Name, l.Kind, l.SizeBytes, l.Mode, pub, l.Published, l.Frames, l.Durable, l.Replicated, subs, l.Error)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// headerInfo is the segment header in `shmctl info`.
type headerInfo struct {
	Path         string `json:"path"`
	Kind         string `json:"kind"`
	Layout       string `json:"layout"`
	SegmentBytes uint64 `json:"segment_bytes"`
	SchemaID     uint64 `json:"schema_id"`
	CreatorPID   uint32 `json:"creator_pid"`
	CreatorAlive bool   `json:"creator_alive"`
	CreatorUID   uint32 `json:"creator_uid"`
	BootID       string `json:"boot_id"`
	Created      string `json:"created"`
	Mode         string `json:"mode"`
}

func headerOf(seg *shm.Segment) headerInfo {
	h := seg.Header()
	return headerInfo{
		Path: seg.Path(), Kind: kindName(h.Kind), Layout: fmt.Sprintf("%d.%d", h.LayoutMajor, h.LayoutMinor),
		SegmentBytes: h.SegmentBytes, SchemaID: h.SchemaID, CreatorPID: h.CreatorPID, CreatorAlive: shm.Alive(h.Creator()),
		CreatorUID: h.CreatorUID, BootID: hex.EncodeToString(h.BootID[:]),
		Created: time.Unix(0, h.CreatedNs).UTC().Format(time.RFC3339Nano), Mode: fmt.Sprintf("%#o", h.CreateMode),
	}
}

// logInfo is `shmctl info` of a log topic.
type logInfo struct {
	Header          headerInfo            `json:"header"`
	Mode            string                `json:"mode"`
	CapacityBytes   uint64                `json:"capacity_bytes"`
	MaxFrameBytes   int                   `json:"max_frame_bytes"`
	SubscriberSlots int                   `json:"subscriber_slots"`
	WriteHorizon    uint64                `json:"write_horizon"`
	Published       uint64                `json:"published"`
	Frames          uint64                `json:"frames"`
	Durable         uint64                `json:"durable"`
	Replicated      uint64                `json:"replicated"`
	Publisher       publisherJSON         `json:"publisher"`
	Subscribers     []ring.SubscriberInfo `json:"subscribers"`
}

type publisherJSON struct {
	State string `json:"state"`
	ring.PublisherInfo
}

// lvcInfo is `shmctl info` of a last-value topic.
type lvcInfo struct {
	Header        headerInfo `json:"header"`
	Slots         int        `json:"slots"`
	MaxValueBytes int        `json:"max_value_bytes"`
	Keys          int        `json:"keys"`
	TableVersion  uint64     `json:"table_version"`
	WriterAlive   bool       `json:"writer_alive"`
}

func infoCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "info TOPIC",
		Short: "Show a topic's header, counters, publisher and subscriber table (lag, loss)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, err := resolve(e, args[0])
			if err != nil {
				return err
			}
			if kind == ring.KindLastValue {
				r, err := ring.OpenLastValue(e.opts, name)
				if err != nil {
					return err
				}
				defer r.Close()
				held, _ := r.Segment().LockHeld(shm.LockWriter)
				info := lvcInfo{Header: headerOf(r.Segment()), Slots: r.Slots(), MaxValueBytes: r.MaxValueBytes(), Keys: r.KeyCount(), TableVersion: r.TableVersion(), WriterAlive: held}
				if asJSON {
					return writeJSON(e, info)
				}
				printHeader(e, info.Header)
				fmt.Fprintf(e.stdout, "slots %d, max value %d B, keys %d, table version %d, writer alive %v\n", info.Slots, info.MaxValueBytes, info.Keys, info.TableVersion, info.WriterAlive)
				return nil
			}
			lg, err := ring.OpenLog(e.opts, name)
			if err != nil {
				return err
			}
			defer lg.Close()
			pi := lg.Publisher()
			info := logInfo{
				Header: headerOf(lg.Segment()), Mode: lg.Mode().String(), CapacityBytes: lg.Capacity(), MaxFrameBytes: lg.MaxFrameBytes(),
				SubscriberSlots: lg.SubscriberSlots(), WriteHorizon: lg.Tail(), Published: lg.Published(), Frames: lg.PublishedFrames(),
				Durable: lg.Durable(), Replicated: lg.Replicated(), Publisher: publisherJSON{State: liveness(pi), PublisherInfo: pi},
				Subscribers: lg.Subscribers(),
			}
			if info.Subscribers == nil {
				info.Subscribers = []ring.SubscriberInfo{}
			}
			if asJSON {
				return writeJSON(e, info)
			}
			printHeader(e, info.Header)
			w := e.stdout
			fmt.Fprintf(w, "mode %s, capacity %d B, max frame %d B, %d subscriber slots\n", info.Mode, info.CapacityBytes, info.MaxFrameBytes, info.SubscriberSlots)
			fmt.Fprintf(w, "positions: published %d (%d frames), durable %d, replicated %d, write horizon %d\n", info.Published, info.Frames, info.Durable, info.Replicated, info.WriteHorizon)
			fmt.Fprintf(w, "publisher: %s, pid %d, heartbeat %v ago, attaches %d, abandoned claims %d, back-pressure waits %d / errors %d, evictions %d\n",
				info.Publisher.State, pi.PID, time.Duration(pi.HeartbeatAgeNs).Round(time.Millisecond), pi.Attaches, pi.AbandonedClaims, pi.BackPressureWait, pi.BackPressureErr, pi.Evictions)
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLOT\tSTATUS\tGATING\tPID\tALIVE\tPOSITION\tLAG\tFRAMES\tLOST\tLAPS\tHEARTBEAT")
			for _, s := range info.Subscribers {
				fmt.Fprintf(tw, "%d\t%s\t%v\t%d\t%v\t%d\t%d\t%d\t%d\t%d\t%v ago\n", s.Slot, s.Status, s.Gating, s.PID, s.Alive, s.Position, s.Lag, s.Frames, s.LossFrames, s.Laps, time.Duration(s.HeartbeatAgeNs).Round(time.Millisecond))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printHeader(e *env, h headerInfo) {
	fmt.Fprintf(e.stdout, "%s: %s, layout %s, %d bytes, schema %d, mode %s\n", h.Path, h.Kind, h.Layout, h.SegmentBytes, h.SchemaID, h.Mode)
	fmt.Fprintf(e.stdout, "created %s by pid %d (uid %d, alive %v), boot %s\n", h.Created, h.CreatorPID, h.CreatorUID, h.CreatorAlive, h.BootID)
}
