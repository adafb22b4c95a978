package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"wicket/sync/wire"
	"wicket/verifier"
)

// Defaults of the orders wicketctl signs.
const (
	// defaultClockResetLife leaves a technician three days to carry a
	// clock reset to the gate.
	defaultClockResetLife = 72 * time.Hour
	// defaultEmergencyAckLife: an acknowledge answers an alarm that has
	// just cleared; one held up on the way longer than this does nothing.
	defaultEmergencyAckLife = 10 * time.Minute
)

// orderFlags are the flags of every command that signs an order.
type orderFlags struct {
	root            *string
	gates, stations multiFlag
	venues          multiFlag
	serial          *uint64
	valid           *time.Duration
}

func addOrderFlags(fs *flag.FlagSet, life time.Duration) *orderFlags {
	o := &orderFlags{
		root:   fs.String("root", "", "root private key (PEM) that signs the order"),
		serial: fs.Uint64("serial", 0, "serial: above the last order of this kind each gate acted on (default: the signing time in milliseconds)"),
		valid:  fs.Duration("valid", life, "how long the order stays valid"),
	}
	fs.Var(&o.gates, "gate", "gate id the order is for (repeat)")
	fs.Var(&o.stations, "station", "VENUE/STATION: every gate the roster places there (repeat)")
	fs.Var(&o.venues, "venue", "every gate of the venue (repeat)")
	return o
}

// order builds the order of kind from the flags, issued now.
func (f *orderFlags) order(kind verifier.OrderKind, now time.Time) (verifier.Order, error) {
	o := verifier.Order{Kind: kind, Serial: *f.serial, IssuedAt: now, Expires: now.Add(*f.valid)}
	if o.Serial == 0 {
		o.Serial = uint64(now.UnixMilli())
	}
	for _, g := range f.gates {
		o.Targets = append(o.Targets, verifier.Target{Gate: g})
	}
	for _, s := range f.stations {
		venue, station, ok := strings.Cut(s, "/")
		if !ok || venue == "" || station == "" {
			return o, usagef("-station %q: want VENUE/STATION as the roster names them", s)
		}
		o.Targets = append(o.Targets, verifier.Target{Venue: venue, Station: station})
	}
	for _, v := range f.venues {
		o.Targets = append(o.Targets, verifier.Target{Venue: v})
	}
	if *f.root == "" || len(o.Targets) == 0 {
		return o, usagef("-root and at least one -gate, -station or -venue are required")
	}
	return o, nil
}

// sign signs the order with the -root key.
func (f *orderFlags) sign(o verifier.Order) ([]byte, error) {
	signer, err := readSigner(*f.root)
	if err != nil {
		return nil, fmt.Errorf("-root: %w", err)
	}
	return o.Sign(signer)
}

// orderLabel is the last level of an order's topic: its one target
// ("gate=g7"), or its serial when it names several.
func orderLabel(o *verifier.Order) string {
	if len(o.Targets) == 1 {
		if l := o.Targets[0].String(); wire.ValidName(l) == nil {
			return l
		}
	}
	return "serial-" + strconv.FormatUint(o.Serial, 10)
}

// describeOrder is one line about an order for the operator.
func describeOrder(o *verifier.Order) string {
	var targets []string
	for _, t := range o.Targets {
		targets = append(targets, t.String())
	}
	s := fmt.Sprintf("%s serial %d for %s, valid until %s", o.Kind, o.Serial, strings.Join(targets, " "), o.Expires.UTC().Format(time.RFC3339))
	if o.Kind == verifier.OrderClockReset {
		s += ", floor " + o.Floor.UTC().Format(time.RFC3339)
	}
	return s
}

// publishOrder publishes a signed order on its topic.
func publishOrder(e env, bf brokerFlags, o *verifier.Order, raw []byte, retained bool) error {
	cl, topics, err := bf.dial()
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	kind := wire.OrderEmergencyAck
	if o.Kind == verifier.OrderClockReset {
		kind = wire.OrderClockReset
	}
	topic := topics.Order(kind, orderLabel(o))
	if err := waitToken(cl.Publish(topic, 1, retained, raw)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	fmt.Fprintf(e.stdout, "published %s on %s\n", describeOrder(o), topic)
	return nil
}

// cmdClockReset signs and publishes clock-floor resets: the signed way
// back for a gate whose clock floor ran ahead of real time.
func cmdClockReset(e env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: sign or publish")
	}
	switch args[0] {
	case "sign":
		return clockResetSign(e, args[1:])
	case "publish":
		return clockResetPublish(e, args[1:])
	}
	return usagef("unknown subcommand %q: want sign or publish", args[0])
}

// clockResetSign signs a clock reset into a file.
func clockResetSign(e env, args []string) error {
	fs := newFlags(e, "clock-reset sign", "-root ROOT.key (-gate ID | -station VENUE/STATION | -venue V)... [-floor TIME] -out FILE")
	of := addOrderFlags(fs, defaultClockResetLife)
	floor := fs.String("floor", "now", "the new clock floor: a time that has passed (RFC 3339), or now")
	out := fs.String("out", "", "file to write the signed order to (must not exist), e.g. on a USB stick")
	if err := parse(fs, args); err != nil {
		return err
	}
	now := time.Now()
	o, err := of.order(verifier.OrderClockReset, now)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("-out is required")
	}
	o.Floor = now
	if *floor != "now" {
		if o.Floor, err = time.Parse(time.RFC3339, *floor); err != nil {
			return usagef("-floor: %v", err)
		}
	}
	raw, err := of.sign(o)
	if err != nil {
		return err
	}
	if err := writeNew(*out, raw); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote %s: %s\n", *out, describeOrder(&o))
	return nil
}

// clockResetPublish publishes a signed clock reset, retained, after
// checking that it verifies with the roots: a gate offline now gets it
// when it reconnects, and acts on it once.
func clockResetPublish(e env, args []string) error {
	fs := newFlags(e, "clock-reset publish", "-broker URL -fleet F -roots ROOT.pub ORDER-FILE")
	bf := addBrokerFlags(fs, "publish")
	rk, raw, err := rootsAndFile(fs, args, "order")
	if err != nil {
		return err
	}
	o, err := rk.ParseOrder(raw, verifier.OrderClockReset)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if !time.Now().Before(o.Expires) {
		return fmt.Errorf("%s: expired %s: gates would refuse it; sign a new one", fs.Arg(0), o.Expires.UTC().Format(time.RFC3339))
	}
	return publishOrder(e, bf, o, raw, true)
}

// cmdEmergencyAck signs an emergency acknowledge and publishes it (not
// retained) to the fleet, or writes it to a file with -out.
func cmdEmergencyAck(e env, args []string) error {
	fs := newFlags(e, "emergency-ack", "-root ROOT.key (-gate ID | -station VENUE/STATION | -venue V)... (-broker URL -fleet F | -out FILE)")
	of := addOrderFlags(fs, defaultEmergencyAckLife)
	bf := addBrokerFlags(fs, "publish")
	out := fs.String("out", "", "write the signed order to this file instead of publishing it")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := of.order(verifier.OrderEmergencyAck, time.Now())
	if err != nil {
		return err
	}
	raw, err := of.sign(o)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeNew(*out, raw); err != nil {
			return fmt.Errorf("-out: %w", err)
		}
		fmt.Fprintf(e.stdout, "wrote %s: %s\n", *out, describeOrder(&o))
		return nil
	}
	return publishOrder(e, bf, &o, raw, false)
}

// rootsAndFile adds -roots to fs, parses args and reads the roots and
// the one signed file (a what) the command takes.
func rootsAndFile(fs *flag.FlagSet, args []string, what string) (verifier.RootKeys, []byte, error) {
	var roots multiFlag
	fs.Var(&roots, "roots", "root public key the "+what+" must verify with (repeat)")
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() != 1 || len(roots) == 0 {
		return nil, nil, usagef("want -roots and one %s file", what)
	}
	rk, err := loadRoots(roots)
	if err != nil {
		return nil, nil, err
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return nil, nil, err
	}
	return rk, raw, nil
}

// writeNew writes data to a file that must not exist yet.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
