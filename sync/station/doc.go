// Package station shares anti-passback between the gates of one station
// over the fleet's broker. A gate announces each voucher it admits as a
// small message signed with its identity key (the voucher's keyed record
// hash, station, gate, time, sequence number); the other gates of the
// station keep what they accept in a bounded memory, forgotten after the
// longest anti-passback window, which the decision loop consults beside
// the gate's own store.
//
// A message is accepted only when it is signed by a gate the root-signed
// roster enrols at the receiving gate's own station, is not a replay of
// a sequence number already seen from that gate, and is dated within the
// window and not in the future; everything else is refused and counted
// by reason. Without a broker, a roster or a station in it, the gate
// falls back to its own memory and its State says so ("local-only"),
// from when and why.
package station
