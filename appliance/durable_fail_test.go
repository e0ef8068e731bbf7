package appliance

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
)

// TestTopicFailingAfterReadStillAdvancesDurable: when the storage tenant
// reads good frames and then, in the same poll round, meets a corrupt frame
// in the ring, the topic fails — but the frames it read are persisted and
// their durable position advances, so their producer learns they are safe.
func TestTopicFailingAfterReadStillAdvancesDurable(t *testing.T) {
	cfg := testConfig(t)
	n, logs := startNode(t, cfg)
	defer n.Close()
	p := openProducer(t, cfg, "trades")

	// Two good Orders and, right behind them, a commit word no frame can
	// have (length 3), all made visible by one batch commit: the committer
	// reads the two frames and fails on the third in one round.
	var payloads [2][]byte
	sizes := make([]int, len(payloads))
	for i := range payloads {
		f, err := schema.AppendEvent(nil, schema.Header{}, testOrder(i))
		if err != nil {
			t.Fatal(err)
		}
		payloads[i], sizes[i] = f[schema.HeaderSize:], len(f)
	}
	lg := p.pub.Log()
	start := p.pub.Position()
	end := start
	for _, s := range sizes {
		end += uint64(schema.AlignedSize(s))
	}
	if end+8 > lg.Capacity() {
		t.Fatalf("the test's frames (%d bytes) do not fit the ring without wrapping", end)
	}
	claims := make([]ring.Claim, len(sizes))
	if err := p.pub.ClaimBatch(sizes, schema.TypeOrder, 0, claims); err != nil {
		t.Fatal(err)
	}
	for i := range claims {
		copy(claims[i].Payload(), payloads[i])
	}
	seg := lg.Segment()
	dataOff := binary.LittleEndian.Uint64(seg.KindParams()[40:48]) // ring's kpDataOff
	word := (*uint64)(unsafe.Pointer(&seg.Bytes()[dataOff+(end&(lg.Capacity()-1))]))
	atomic.StoreUint64(word, 3|uint64(schema.TypeOrder)<<32)
	p.pub.CommitBatch(claims)

	if err := lg.WaitDurable(end, 10*time.Second); err != nil {
		t.Fatalf("the frames read before the topic failed never became durable (durable %d, want %d): %v\n%s", lg.Durable(), end, err, logs)
	}
	base := "http://" + n.AdminAddr()
	_, body := httpGet(t, base+"/v1/events?topic=trades&limit=10")
	if ev := parseEventLines(t, body); len(ev) != 2 || ev[0].Header.Seq != 0 || ev[1].Header.Seq != 1 {
		t.Fatalf("events of the failed topic: %s", body)
	}
	_, body = httpGet(t, base+"/v1/status")
	var st struct {
		Topics []struct {
			Name   string `json:"name"`
			Failed string `json:"failed"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	failed := ""
	for _, ts := range st.Topics {
		if ts.Name == "trades" {
			failed = ts.Failed
		}
	}
	if !strings.Contains(failed, "corrupt frame") {
		t.Fatalf("trades is not reported failed with the ring's error: %q\n%s", failed, body)
	}
}
