package appliance

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/schema"
)

// TestQuarantineWithholdsSecrets: a malformed TransferRequest still carries
// its passwords in its bytes; /v1/quarantine shows only its header (and its
// size), while a malformed frame of a type without secrets stays whole.
func TestQuarantineWithholdsSecrets(t *testing.T) {
	cfg := testConfig(t)
	n, _ := startNode(t, cfg)
	defer n.Close()
	p := openProducer(t, cfg, "trades")

	const secret = "hunter2-quarantined"
	frame, err := schema.AppendEvent(nil, schema.Header{}, &schema.TransferRequest{
		UserID: "u1", FutureAccount: "a1", FuturePassword: secret, BankID: "b1", BankPassword: secret, Currency: "CNY", Amount: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.pub.Claim(len(frame), schema.TypeTransferRequest, 0)
	if err != nil {
		t.Fatal(err)
	}
	pl := c.Payload()
	copy(pl, frame[schema.HeaderSize:])
	binary.LittleEndian.PutUint32(pl[0:4], 0xFFFF_FFF0) // the root offset points outside the payload
	p.pub.Commit(c)
	p.waitDurable(p.pub.Position())
	if !bytes.Contains(pl, []byte(secret)) {
		t.Fatal("the malformed frame lost the password bytes this test is about")
	}

	_, body := httpGet(t, "http://"+n.AdminAddr()+"/v1/quarantine?topic=trades&limit=10")
	if strings.Contains(body, secret) {
		t.Fatalf("a quarantined TransferRequest shows its password:\n%s", body)
	}
	var q struct {
		Seq           uint64
		Reason        string
		Frame         []byte
		FrameLen      int  `json:"frame_len"`
		FrameRedacted bool `json:"frame_redacted"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &q); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	if !q.FrameRedacted || q.FrameLen != len(frame) || len(q.Frame) != schema.HeaderSize || bytes.Contains(q.Frame, []byte(secret)) {
		t.Fatalf("quarantined TransferRequest: redacted %v, frame_len %d (want %d), %d frame bytes shown (want the %d-byte header)",
			q.FrameRedacted, q.FrameLen, len(frame), len(q.Frame), schema.HeaderSize)
	}
	if h, err := schema.DecodeHeader(append(q.Frame, make([]byte, len(frame))...)); err != nil || h.Type != schema.TypeTransferRequest {
		t.Fatalf("the shown header does not name the type: %v %v", h.Type, err)
	}
}
