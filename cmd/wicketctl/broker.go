package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/mqttconn"
	"wicket/sync/wire"
)

// brokerFlags are the connection flags of every command that talks to the
// broker.
type brokerFlags struct {
	broker, fleet, clientID, username, passwordFile, ca, cert, key *string
}

func addBrokerFlags(fs *flag.FlagSet, role string) brokerFlags {
	host, _ := os.Hostname()
	return brokerFlags{
		broker:       fs.String("broker", "tcp://127.0.0.1:1883", "broker URL: tcp://host:1883 or tls://host:8883; the nodes of one cluster comma-separated (tried in turn)"),
		fleet:        fs.String("fleet", "", "fleet id (topics are wicket/<fleet>/...)"),
		clientID:     fs.String("client-id", "wicket-"+role+"-"+host, "MQTT client id (stable per client)"),
		username:     fs.String("username", "", "MQTT username"),
		passwordFile: fs.String("password-file", "", "file holding the MQTT password"),
		ca:           fs.String("ca", "", "CA certificate of the broker (PEM)"),
		cert:         fs.String("cert", "", "client certificate (PEM), for mutual TLS"),
		key:          fs.String("key", "", "client key (PEM), for mutual TLS"),
	}
}

func (b brokerFlags) conn() (mqttconn.Conn, wire.Topics, error) {
	c := mqttconn.Conn{Broker: *b.broker, ClientID: *b.clientID, Username: *b.username,
		PasswordFile: *b.passwordFile, CAFile: *b.ca, CertFile: *b.cert, KeyFile: *b.key}
	if urls := strings.Split(*b.broker, ","); len(urls) > 1 {
		c.Broker, c.Brokers = "", urls
	}
	if err := wire.ValidName(*b.fleet); err != nil {
		return c, wire.Topics{}, usagef("-fleet: %v", err)
	}
	if err := c.Validate("-"); err != nil {
		return c, wire.Topics{}, usagef("%v", err)
	}
	return c, wire.Topics{Fleet: *b.fleet}, nil
}

// brokerName is the -broker value: the URL, or the cluster's URLs
// comma-separated.
func brokerName(c mqttconn.Conn) string { return strings.Join(c.URLs(), ",") }

// dial connects a short-lived operator client (clean session: an
// operator tool keeps no state on the broker).
func dial(c mqttconn.Conn) (mqtt.Client, error) {
	o, err := c.Options()
	if err != nil {
		return nil, err
	}
	o.SetCleanSession(true)
	cl := mqtt.NewClient(o)
	if err := waitToken(cl.Connect()); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", brokerName(c), err)
	}
	return cl, nil
}

var errBrokerTimeout = errors.New("broker did not answer in time")

func waitToken(t mqtt.Token) error {
	if !t.WaitTimeout(15 * time.Second) {
		return errBrokerTimeout
	}
	return t.Error()
}

// retained collects the retained messages on a filter: everything that
// arrives until quiet passes with nothing new (or ctx ends).
//
// It subscribes at QoS 0: a broker queues at most max_queued_messages
// QoS 1 messages per client beyond those in flight (1000 and 20 in
// Mosquitto's default and in the shipped station.conf) and drops the
// rest without a word, so a QoS 1 read of 5,000 gates' statuses saw
// 1,020 of them. QoS 0 messages to a connected client are not queued.
func retained(ctx context.Context, cl mqtt.Client, filter string, quiet time.Duration) (map[string][]byte, error) {
	got := make(chan mqtt.Message, 1024)
	if err := waitToken(cl.Subscribe(filter, 0, func(_ mqtt.Client, m mqtt.Message) {
		if m.Retained() {
			got <- m
		}
	})); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", filter, err)
	}
	defer cl.Unsubscribe(filter)
	out := map[string][]byte{}
	t := time.NewTimer(quiet)
	defer t.Stop()
	for {
		select {
		case m := <-got:
			out[m.Topic()] = m.Payload()
			t.Reset(quiet)
		case <-t.C:
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}
