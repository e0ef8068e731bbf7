package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

func init() { register(newWALCommand) }

func newWALCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "wal",
		Short: "Inspect a write-ahead log directory (the appliance must not be writing to it)",
	}
	c.AddCommand(newWALVerifyCommand(), newWALDumpCommand())
	return c
}

// verifyOutput is the --json document of `wal verify`.
type verifyOutput struct {
	*wal.Report
	RecordsRead int64  `json:"records_read"`
	ReadError   string `json:"read_error,omitempty"`
}

func newWALVerifyCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every segment, frame and record and classify the log's end",
		Long: `verify reads every segment of the log in DIR, checks each frame's CRC and each
record, and classifies what follows the last valid frame with the recovery
decision table (see the wal package documentation):

  clean      the log ends with the frame a clean shutdown writes
  torn-tail  a crash cut the log; opening it drops the unacknowledged tail
  corrupt    acknowledged data is damaged; the appliance refuses to start

It changes nothing. Exit code 0 for clean and torn-tail, 3 for corrupt, 1
when the directory cannot be read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := wal.Inspect(vfs.Default, args[0])
			if err != nil {
				return err
			}
			out := verifyOutput{Report: rep}
			// Read every record back: this checks record structure inside
			// CRC-valid frames too.
			if r, err := rep.NewReader(vfs.Default, rep.FirstLSN); err != nil {
				out.ReadError = err.Error()
			} else {
				for {
					if _, err := r.Next(); err != nil {
						if !errors.Is(err, io.EOF) {
							out.ReadError = err.Error()
						}
						break
					}
					out.RecordsRead++
				}
				r.Close()
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				printReport(w, rep, out.RecordsRead)
				if out.ReadError != "" {
					fmt.Fprintf(w, "READ ERROR: %s\n", out.ReadError)
				}
			}
			if rep.Decision.Verdict == wal.Corrupt {
				return &exitError{code: exitCorrupt, err: rep.Err()}
			}
			if out.ReadError != "" {
				return &exitError{code: exitCorrupt, err: errors.New(out.ReadError)}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func printReport(w io.Writer, rep *wal.Report, records int64) {
	fmt.Fprintf(w, "log %s: %s (rule %d: %s)\n", rep.Dir, rep.Decision.Verdict, rep.Decision.Rule, rep.Decision.Reason)
	if rep.LastLSN >= rep.FirstLSN {
		fmt.Fprintf(w, "  LSNs %d..%d (%d records read back, %d frames)\n", rep.FirstLSN, rep.LastLSN, records, rep.Frames)
	} else {
		fmt.Fprintf(w, "  empty (next LSN %d)\n", rep.FirstLSN)
	}
	fmt.Fprintf(w, "  end: segment %d (%s) offset %d\n", rep.EndSegment, wal.SegmentName(rep.EndSegment), rep.EndOffset)
	e := rep.Evidence
	fmt.Fprintf(w, "  evidence: end=%s last_is_close=%t outside_frames=%t promise_beyond_end=%t outside_continues=%t\n",
		e.End, e.LastIsClose, e.OutsideFrames, e.PromiseBeyondEnd, e.OutsideContinues)
	if rep.LogUUID != "" {
		fmt.Fprintf(w, "  log UUID %s, %d bytes scanned\n", rep.LogUUID, rep.Bytes)
	}
	for _, s := range rep.Segments {
		state := "outside the log"
		if s.InLog {
			state = fmt.Sprintf("LSNs %d..%d, %d frames, ends at %d", s.FirstLSN, s.LastLSN, s.Frames, s.EndOffset)
			if s.Frames == 0 {
				state = fmt.Sprintf("no frames, starts at LSN %d", s.FirstLSN)
			}
		}
		fmt.Fprintf(w, "  %s  %10d bytes  header %-7s  %s", s.Name, s.SizeBytes, s.Header, state)
		if s.Outside > 0 {
			fmt.Fprintf(w, "  (+%d frames outside the log)", s.Outside)
		}
		fmt.Fprintln(w)
	}
	if rep.Decision.Verdict == wal.Corrupt {
		fmt.Fprintf(w, "CORRUPT: segment %d (%s) offset %d: %s\n", rep.ProblemSegment, wal.SegmentName(rep.ProblemSegment), rep.ProblemOffset, rep.Problem)
	}
}

// dumpRecord is one line of `wal dump --json`.
type dumpRecord struct {
	LSN       wal.LSN `json:"lsn"`
	Type      uint16  `json:"type"`
	Bytes     int     `json:"bytes"`
	FrameType *uint16 `json:"frame_type,omitempty"`
	FrameSeq  *uint64 `json:"frame_seq,omitempty"`
	Payload   []byte  `json:"payload,omitempty"`
}

func newWALDumpCommand() *cobra.Command {
	var (
		asJSON  bool
		from    uint64
		limit   int64
		payload bool
	)
	c := &cobra.Command{
		Use:   "dump DIR",
		Short: "Print the records of the log, from an LSN",
		Long: `dump prints one line per record of the recovered log in DIR: LSN, record type,
payload size and, when the payload is a Tapewire frame, the frame's type and
sequence number from its header. With --json each line is a JSON object.
The classification of the log's end is printed last (to stderr with --json).
Exit code 3 if the log is corrupt (the records before the damage are still
printed), 1 on other errors.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := wal.Inspect(vfs.Default, args[0])
			if err != nil {
				return err
			}
			start := max(wal.LSN(from), rep.FirstLSN)
			w := cmd.OutOrStdout()
			enc := json.NewEncoder(w)
			var readErr error
			if start <= rep.LastLSN {
				r, err := rep.NewReader(vfs.Default, start)
				if err != nil {
					return err
				}
				defer r.Close()
				for n := int64(0); limit <= 0 || n < limit; n++ {
					rec, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						readErr = err
						break
					}
					d := dumpRecord{LSN: rec.LSN, Type: rec.Type, Bytes: len(rec.Payload)}
					if h, err := schema.DecodeHeader(rec.Payload); err == nil && int(h.Length) == len(rec.Payload) {
						t, seq := uint16(h.Type), h.Seq
						d.FrameType, d.FrameSeq = &t, &seq
					}
					if payload {
						d.Payload = rec.Payload
					}
					if asJSON {
						if err := enc.Encode(d); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(w, "lsn=%d type=%d bytes=%d", d.LSN, d.Type, d.Bytes)
					if d.FrameType != nil {
						fmt.Fprintf(w, " frame_type=%d frame_seq=%d", *d.FrameType, *d.FrameSeq)
					}
					if payload {
						fmt.Fprintf(w, " payload=%x", d.Payload)
					}
					fmt.Fprintln(w)
				}
			}
			summary := cmd.OutOrStdout()
			if asJSON {
				summary = cmd.ErrOrStderr()
			}
			fmt.Fprintf(summary, "# %s: %s, LSNs %d..%d, end at segment %d offset %d\n", rep.Dir, rep.Decision.Verdict, rep.FirstLSN, rep.LastLSN, rep.EndSegment, rep.EndOffset)
			if rep.Decision.Verdict == wal.Corrupt {
				return &exitError{code: exitCorrupt, err: rep.Err()}
			}
			if readErr != nil {
				code := 1
				if wal.IsCorruption(readErr) {
					code = exitCorrupt
				}
				return &exitError{code: code, err: readErr}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per record")
	c.Flags().Uint64Var(&from, "from", 0, "first LSN to print (default: the log's first)")
	c.Flags().Int64Var(&limit, "limit", 0, "print at most this many records (0: all)")
	c.Flags().BoolVar(&payload, "payload", false, "include the payload (hex; base64 in JSON)")
	return c
}
