package appliance

import (
	"fmt"
	"strings"
	"testing"
)

// TestPersistAndRestart publishes orders, waits for durability, reads them
// back through /v1/events and /v1/state, restarts the node and reads them
// again.
func TestPersistAndRestart(t *testing.T) {
	cfg := testConfig(t)
	n, _ := startNode(t, cfg)
	p := openProducer(t, cfg, "trades")
	const count = 500
	var lastPos uint64
	for i := range count {
		_, lastPos = p.publish(testOrder(i))
	}
	p.waitDurable(lastPos)
	base := "http://" + n.AdminAddr()
	code, body := httpGet(t, base+"/v1/events?topic=trades&from=0&limit=1000")
	if code != 200 {
		t.Fatalf("events: %d %s", code, body)
	}
	lines := parseEventLines(t, body)
	if len(lines) != count {
		t.Fatalf("events: %d lines, want %d", len(lines), count)
	}
	for i, l := range lines {
		if l.Header.Seq != uint64(i) || l.Header.Type != "Order" {
			t.Fatalf("line %d: seq %d type %s", i, l.Header.Seq, l.Header.Type)
		}
	}
	code, body = httpGet(t, base+"/v1/state/order/user4/o-494")
	if code != 200 || !strings.Contains(body, `"order_id":"o-494"`) {
		t.Fatalf("state: %d %s", code, body)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, _ := startNode(t, cfg)
	defer n2.Close()
	base = "http://" + n2.AdminAddr()
	code, body = httpGet(t, base+fmt.Sprintf("/v1/events?topic=trades&from=%d&limit=10", count-1))
	if lines := parseEventLines(t, body); code != 200 || len(lines) != 1 || lines[0].Header.Seq != count-1 {
		t.Fatalf("after restart: %d %s", code, body)
	}
	// The producer goes on with the next sequence number.
	seq, pos := p.publish(testOrder(count))
	if seq != count {
		t.Fatalf("next seq %d, want %d", seq, count)
	}
	p.waitDurable(pos)
}
