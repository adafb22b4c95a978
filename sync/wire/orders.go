package wire

import "strings"

// Order topics carry the authority's signed orders to named gates, under
// the trust tree every gate reads: wicket/<fleet>/trust/order/<kind>/<label>
// with kind clock-reset (retained: a gate offline when it was published
// gets it on reconnecting) or emergency-ack (not retained: it answers an
// alarm now). The label only keeps one order's retained message from
// replacing another's (the publisher names it after the targets); a gate
// reads the targets from the signed order itself.
const (
	OrderClockReset   = "clock-reset"
	OrderEmergencyAck = "emergency-ack"
)

// Order is the topic of an order of the kind, labelled label (a ValidName).
func (t Topics) Order(kind, label string) string {
	return t.orders() + kind + "/" + label
}

// OrderKind returns the kind of an order topic, or "" for any other
// topic.
func (t Topics) OrderKind(topic string) string {
	rest, ok := strings.CutPrefix(topic, t.orders())
	if !ok {
		return ""
	}
	kind, label, ok := strings.Cut(rest, "/")
	if !ok || ValidName(label) != nil || (kind != OrderClockReset && kind != OrderEmergencyAck) {
		return ""
	}
	return kind
}

func (t Topics) orders() string { return Root + "/" + t.Fleet + "/trust/order/" }
