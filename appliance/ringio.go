package appliance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/shm"
)

// This file holds how the appliance creates topics (sequence numbers
// continuing from the store) and what it does to rings beyond ring's API:
// the words a committer that reads several topics parks on, from the
// documented wire format of ring/doc.go (the layout a C or Rust client
// maps); a ring.WaitAny would replace them.

// Offsets of the log topic file, from ring/doc.go.
const (
	kpCapacity    = 0   // kind params: u64 capacity
	kpControlOff  = 24  // kind params: u64 control page offset
	kpDataOff     = 40  // kind params: u64 data area offset
	ctlDataFutex  = 512 // control page: u32 data futex
	ctlDataParked = 640 // control page: u32 subscribers parked on it
)

// ensureLog makes sure the log topic t exists. A missing topic is created
// with its next sequence number at firstSeq, so a topic recreated after its
// segment vanished (host reboot, /dev/shm cleared) never reuses a sequence
// number the store already holds. It returns whether it created the topic.
func ensureLog(o shm.Options, t *TopicConfig, firstSeq uint64) (bool, error) {
	cfg := ring.LogConfig{
		CapacityBytes: t.CapacityBytes,
		MaxFrameBytes: t.MaxFrameBytes,
		Mode:          t.ringMode(),
		Subscribers:   t.Subscribers,
		FirstSeq:      firstSeq,
	}
	p, err := ring.CreateLog(o, t.Name, cfg, ring.PublisherOptions{})
	if err != nil {
		if errors.Is(err, os.ErrExist) || segmentExists(o, t.Name+ring.LogSuffix) {
			return false, nil
		}
		return false, fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	if got := p.Log().PublishedFrames(); got != firstSeq {
		p.Close()
		return true, fmt.Errorf("create topic %s: next sequence number reads %d after creating it with %d", t.Name, got, firstSeq)
	}
	return true, p.Close()
}

func segmentExists(o shm.Options, file string) bool {
	_, err := os.Stat(filepath.Join(o.Dir(), file))
	return err == nil
}

// parkWords are the words of one log topic a parking committer needs: the
// data futex and its parked count, and where the frame at a position keeps
// its commit word.
type parkWords struct {
	seg      *shm.Segment
	futex    *uint32
	parked   *uint32
	dataOff  uint64
	mask     uint64
	capacity uint64
}

func newParkWords(lg *ring.Log) parkWords {
	seg := lg.Segment()
	kp := seg.KindParams()
	ctl := int(binary.LittleEndian.Uint64(kp[kpControlOff:]))
	capacity := binary.LittleEndian.Uint64(kp[kpCapacity:])
	return parkWords{
		seg:      seg,
		futex:    seg.Uint32At(ctl + ctlDataFutex),
		parked:   seg.Uint32At(ctl + ctlDataParked),
		dataOff:  binary.LittleEndian.Uint64(kp[kpDataOff:]),
		mask:     capacity - 1,
		capacity: capacity,
	}
}

// committed reports whether a frame (or padding) is committed at pos: its
// length word is non-zero. This is the check ring's own Wait makes.
func (w *parkWords) committed(pos uint64) bool {
	return uint32(atomic.LoadUint64(w.seg.Uint64At(int(w.dataOff+(pos&w.mask))))) != 0
}
