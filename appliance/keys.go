package appliance

import (
	"encoding/binary"
	"fmt"
	"strings"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/schema/fb"
)

// Key spaces of the store (big-endian integers, so order on disk is order
// in time):
//
//	e/<topic u32>/<seq u64>        → frame          the event log
//	q/<topic u32>/<seq u64>        → reason frame   quarantined (malformed) frames
//	s/<kind>/<id>[/<id2>]          → frame          latest state
//	m/topic/<name>                 → topic u32 | catalog kind u32   topic catalog
//
// State ids are the event's string fields with '%' and '/' escaped as %25
// and %2F, so a part never contains the separator.
const (
	eventKeyBytes = 2 + 4 + 1 + 8
)

// State kinds (the <kind> of s/<kind>/<id>).
const (
	StateOrder      = "order"      // Order by user_id/order_id
	StateAccount    = "account"    // Account by user_id/currency
	StatePosition   = "position"   // Position by user_id/instrument_id
	StateQuote      = "quote"      // Tick by instrument_id
	StateInstrument = "instrument" // Instrument by instrument_id
	StateUser       = "user"       // UserRegistered by user_id
	StateBinding    = "binding"    // AccountBound by user_id/account_id
)

// StateKinds lists the state kinds, for the admin API.
var StateKinds = []string{StateOrder, StateAccount, StatePosition, StateQuote, StateInstrument, StateUser, StateBinding}

// appendEventKey appends e/<topic>/<seq>. Hot path.
func appendEventKey(dst []byte, topic uint32, seq uint64) []byte {
	return appendTopicSeqKey(dst, 'e', topic, seq)
}

// appendQuarantineKey appends q/<topic>/<seq>.
func appendQuarantineKey(dst []byte, topic uint32, seq uint64) []byte {
	return appendTopicSeqKey(dst, 'q', topic, seq)
}

func appendTopicSeqKey(dst []byte, space byte, topic uint32, seq uint64) []byte {
	dst = append(dst, space, '/')
	dst = binary.BigEndian.AppendUint32(dst, topic)
	dst = append(dst, '/')
	return binary.BigEndian.AppendUint64(dst, seq)
}

// storePartition is the store's lsm.Options.Partition: the event log and
// the quarantine of each topic (e/<topic>/, q/<topic>/) are a partition
// each, every other key space (s/ state, m/ catalog) is one partition per
// first byte. No table then spans two topics' logs or a log and the
// state, so each topic's log, appended in sequence order, flushes into
// tables that lie after its older ones and move to the bottom level
// without being rewritten, while the state keys compact among themselves;
// and each topic's inserts keep their own cached memtable position. The
// ids increase with the keys the appliance writes (first byte, then topic
// id), as lsm wants. Hot path: a few comparisons.
func storePartition(key []byte) uint64 {
	if len(key) == 0 {
		return 0
	}
	p := uint64(key[0]) << 56
	if (key[0] == 'e' || key[0] == 'q') && len(key) >= 6 && key[1] == '/' {
		p |= 1<<32 | uint64(binary.BigEndian.Uint32(key[2:6]))
	}
	return p
}

// storeBloomBits is the store's lsm.Options.BloomBitsPerKeyFor: tables of
// an event log or a quarantine (e/, q/; each in its own partition, so the
// whole table) carry no bloom filter — they are read by range scans
// (/v1/events, the newest sequence at start), which never consult one —
// while state and catalog tables keep lsm.bloom_bits_per_key for their
// point reads.
func storeBloomBits(firstKey []byte) int {
	if len(firstKey) > 0 && (firstKey[0] == 'e' || firstKey[0] == 'q') {
		return -1
	}
	return 0
}

// topicPrefix returns the key prefix of one topic in a topic/seq space and
// the first key past it.
func topicPrefix(space byte, topic uint32) (lower, upper []byte) {
	lower = append([]byte{space, '/'}, binary.BigEndian.AppendUint32(nil, topic)...)
	lower = append(lower, '/')
	upper = append([]byte{space, '/'}, binary.BigEndian.AppendUint32(nil, topic)...)
	upper = append(upper, '/'+1)
	return lower, upper
}

// parseTopicSeqKey reads the seq of an e/ or q/ key.
func parseTopicSeqKey(key []byte) (topic uint32, seq uint64, ok bool) {
	if len(key) != eventKeyBytes || key[1] != '/' || key[6] != '/' {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(key[2:6]), binary.BigEndian.Uint64(key[7:15]), true
}

// appendStateKey appends s/<kind>/<part>[/<part2>], escaping each part.
// Hot path: no allocation when dst has room.
func appendStateKey(dst []byte, kind string, part1, part2 []byte) []byte {
	dst = append(dst, 's', '/')
	dst = append(dst, kind...)
	dst = append(dst, '/')
	dst = appendEscaped(dst, part1)
	if part2 != nil {
		dst = append(dst, '/')
		dst = appendEscaped(dst, part2)
	}
	return dst
}

func appendEscaped(dst, part []byte) []byte {
	for _, c := range part {
		switch c {
		case '%':
			dst = append(dst, '%', '2', '5')
		case '/':
			dst = append(dst, '%', '2', 'F')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// stateKeyFromID builds the key of a state id as the admin API receives it
// ("alice/o-1": parts separated by '/', each part unescaped).
func stateKeyFromID(kind, id string) []byte {
	parts := strings.Split(id, "/")
	key := append([]byte("s/"+kind+"/"), nil...)
	for i, p := range parts {
		if i > 0 {
			key = append(key, '/')
		}
		key = appendEscaped(key, []byte(p))
	}
	return key
}

// stateIDFromKey turns s/<kind>/<escaped id> back into the id form.
func stateIDFromKey(key []byte) (kind, id string) {
	s := string(key)
	if !strings.HasPrefix(s, "s/") {
		return "", ""
	}
	s = s[2:]
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return s, ""
	}
	kind, rest := s[:i], s[i+1:]
	parts := strings.Split(rest, "/")
	for j, p := range parts {
		p = strings.ReplaceAll(p, "%2F", "/")
		parts[j] = strings.ReplaceAll(p, "%25", "%")
	}
	return kind, strings.Join(parts, "/")
}

func catalogKey(name string) []byte { return []byte("m/topic/" + name) }

// stateExtractor finds the state key of a verified frame with the
// flatbuffers accessors, without allocating. One per goroutine.
type stateExtractor struct {
	tick       fb.Tick
	order      fb.Order
	account    fb.Account
	position   fb.Position
	instrument fb.Instrument
	user       fb.UserRegistered
	bound      fb.AccountBound
}

// stateKey appends the state key of frame (verified by schema.Verify, and
// not changing) to dst; ok is false for event types without state. Hot
// path.
func (x *stateExtractor) stateKey(dst []byte, frame []byte) ([]byte, bool) {
	if len(frame) < schema.HeaderSize+4 {
		return dst, false
	}
	typ := schema.Type(binary.LittleEndian.Uint16(frame[4:6]))
	p := frame[schema.HeaderSize:]
	root := flatbuffers.GetUOffsetT(p)
	switch typ {
	case schema.TypeTick:
		x.tick.Init(p, root)
		return appendStateKey(dst, StateQuote, x.tick.InstrumentId(), nil), true
	case schema.TypeOrder:
		x.order.Init(p, root)
		return appendStateKey(dst, StateOrder, x.order.UserId(), x.order.OrderId()), true
	case schema.TypeAccount:
		x.account.Init(p, root)
		return appendStateKey(dst, StateAccount, x.account.UserId(), x.account.Currency()), true
	case schema.TypePosition:
		x.position.Init(p, root)
		return appendStateKey(dst, StatePosition, x.position.UserId(), x.position.InstrumentId()), true
	case schema.TypeInstrument:
		x.instrument.Init(p, root)
		return appendStateKey(dst, StateInstrument, x.instrument.InstrumentId(), nil), true
	case schema.TypeUserRegistered:
		x.user.Init(p, root)
		return appendStateKey(dst, StateUser, x.user.UserId(), nil), true
	case schema.TypeAccountBound:
		x.bound.Init(p, root)
		return appendStateKey(dst, StateBinding, x.bound.UserId(), x.bound.AccountId()), true
	}
	return dst, false
}

// StateKeyOf returns the state key ("s/order/alice/o-1") of a frame, or ""
// when its type keeps no state; for tools and tests that replay events.
func StateKeyOf(frame []byte) (string, error) {
	if err := schema.Verify(frame); err != nil {
		return "", err
	}
	var x stateExtractor
	k, ok := x.stateKey(nil, frame)
	if !ok {
		return "", nil
	}
	return string(k), nil
}

// checkKind reports whether kind is a state kind.
func checkKind(kind string) error {
	for _, k := range StateKinds {
		if k == kind {
			return nil
		}
	}
	return fmt.Errorf("unknown state kind %q (kinds: %s)", kind, strings.Join(StateKinds, ", "))
}
