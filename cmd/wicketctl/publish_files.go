package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/snapfile"
	"wicket/sync/wire"
	"wicket/verifier"
)

// cmdPublishFiles publishes a snapshot as files: each signed document of
// a snapshot directory (wicketctl snapshot -out) is written under the
// SHA-256 of its content into -files, which the operator serves at the
// -url base URLs, and a small signed manifest on the broker announces
// them. The documents also go, retained, on the fallback topics, which
// gates read only when no URL serves them. The broker's holdings are
// checked first, as publish does.
func cmdPublishFiles(e env, args []string) error {
	fs := newFlags(e, "publish-files", "-root ROOT.key -roots ROOT.pub -broker URL -fleet F -snapshot DIR -files OUT -url BASE [-url BASE]... [-no-fallback] [-no-url-check] [-yes]")
	bf := addBrokerFlags(fs, "publish")
	var roots, urls multiFlag
	fs.Var(&roots, "roots", "root public key the documents must verify with (repeat)")
	fs.Var(&urls, "url", "base URL -files is served at, http:// or https:// (repeat for mirrors, tried in turn)")
	root := fs.String("root", "", "root private key that signs the manifest")
	snapDir := fs.String("snapshot", "", "snapshot directory (wicketctl snapshot -out); -part-entries 65536 keeps the manifest small")
	files := fs.String("files", "", "directory to write the content-addressed files into (created if missing; files already there are kept)")
	noFallback := fs.Bool("no-fallback", false, "do not put the parts on the broker's fallback topics (gates that reach no URL then get no snapshot)")
	prog := fs.String("progress", "auto", "progress bar: auto (on a terminal), on or off")
	yes := fs.Bool("yes", false, "publish a snapshot even though it drops statements still in force (they are listed first)")
	noURLCheck := fs.Bool("no-url-check", false, "announce without first asking every -url for the files (for URLs that only the gates reach)")
	if err := parse(fs, args); err != nil {
		return err
	}
	conn, topics, err := bf.conn()
	if err != nil {
		return err
	}
	switch {
	case len(roots) == 0 || *root == "" || *snapDir == "" || *files == "" || len(urls) == 0:
		return usagef("-roots, -root, -snapshot, -files and -url are required")
	case len(urls) > snapfile.MaxURLs:
		return usagef("-url: %d given, at most %d", len(urls), snapfile.MaxURLs)
	case *prog != "auto" && *prog != "on" && *prog != "off":
		return usagef("-progress: auto, on or off")
	}
	for _, u := range urls {
		if err := snapfile.CheckURL(u); err != nil {
			return usagef("-url: %v", err)
		}
	}
	rk, err := loadRoots(roots)
	if err != nil {
		return err
	}
	signer, err := readSigner(*root)
	if err != nil {
		return fmt.Errorf("-root: %w", err)
	}
	ps, err := readPartSet(e, rk, *snapDir, *prog)
	if err != nil {
		return err
	}
	pub := &publisher{e: e, conn: conn, topics: topics, rk: rk, yes: *yes, prog: *prog}
	docs := ps.files
	var b *verifier.Batch
	if ps.single != "" {
		if b, err = readPart(rk, ps.single); err != nil {
			return err
		}
		pub.docs = []pubDoc{{topic: topics.Snapshot(), b: b}}
		docs = []string{ps.single}
	} else {
		pub.parts = ps
		b = &verifier.Batch{Version: ps.version, IssuedAt: ps.issuedAt}
	}
	m := snapfile.Manifest{Version: b.Version, IssuedAt: b.IssuedAt, URLs: urls}
	for _, f := range docs {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		m.Parts = append(m.Parts, snapfile.PartOf(raw))
	}
	manifest, err := m.Sign(signer)
	if err != nil {
		return err
	}
	if _, err := snapfile.Parse(rk, manifest); err != nil {
		return fmt.Errorf("-root does not sign for -roots: %w", err)
	}

	cl, err := dial(conn)
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	if err := pub.check(cl); err != nil {
		return err
	}
	if err := writeFiles(e, *files, docs, m.Parts); err != nil {
		return err
	}
	if *noURLCheck {
		fmt.Fprintln(e.stdout, "-no-url-check: the URLs were not asked for the files")
	} else if err := checkServed(e, &m, *files); err != nil {
		return err
	}
	fallback := docs
	if *noFallback {
		fallback = nil
	}
	if err := publishFallback(e, cl, topics, fallback, *prog); err != nil {
		return err
	}
	if err := waitToken(cl.Publish(snapfile.Topic(topics.Fleet), 1, true, manifest)); err != nil {
		return fmt.Errorf("publish %s: %w", snapfile.Topic(topics.Fleet), err)
	}
	fmt.Fprintf(e.stdout, "manifest of snapshot %d (%d parts, %d bytes of files at %d URL(s)): %d bytes → %s\n",
		m.Version, len(m.Parts), m.Total(), len(m.URLs), len(manifest), snapfile.Topic(topics.Fleet))
	// What the file snapshot supersedes on the broker.
	if err := clearParts(e, cl, topics, 0, m.Version); err != nil {
		return err
	}
	if err := clearOlderSnapshot(e, cl, rk, topics, m.Version); err != nil {
		return err
	}
	return clearDeltas(e, cl, topics, m.Version)
}

// checkServed asks every base URL of m for every part before anything is
// announced: a HEAD of each part must answer 200 with the manifest's size,
// and the smallest part, fetched whole, must match its SHA-256. A URL
// that does not serve the files would send the whole fleet to the
// broker's fallback parts (with -no-fallback, leave it without the
// snapshot).
func checkServed(e env, m *snapfile.Manifest, dir string) error {
	hc := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DisableCompression: true},
	}
	small := 0
	for n, p := range m.Parts {
		if p.Size < m.Parts[small].Size {
			small = n
		}
	}
	var bad []string
	for i, u := range m.URLs {
		if err := servedAt(hc, m, i, small); err != nil {
			bad = append(bad, fmt.Sprintf("  %s: %v", u, err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("nothing announced: not every -url serves the files written to %s:\n%s\nserve that directory at each -url (or copy the files there) and run again, which keeps the files already written; -no-url-check announces without asking the URLs",
			dir, strings.Join(bad, "\n"))
	}
	fmt.Fprintf(e.stdout, "every -url serves the %d files (each asked for its size, part %d fetched and its SHA-256 checked)\n", len(m.Parts), small)
	return nil
}

// servedAt checks the parts of m at base URL i, as checkServed.
func servedAt(hc *http.Client, m *snapfile.Manifest, i, whole int) error {
	for n, p := range m.Parts {
		method := http.MethodHead
		if n == whole {
			method = http.MethodGet
		}
		u := m.URL(i, n)
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("part %d: %w", n, err)
		}
		var body []byte
		if method == http.MethodGet {
			body, err = io.ReadAll(io.LimitReader(resp.Body, p.Size+1))
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("part %d (%s): HTTP %s", n, u, resp.Status)
		case err != nil:
			return fmt.Errorf("part %d (%s): %w", n, u, err)
		case method == http.MethodHead && resp.ContentLength >= 0 && resp.ContentLength != p.Size:
			return fmt.Errorf("part %d (%s): %d bytes, the manifest says %d", n, u, resp.ContentLength, p.Size)
		case method == http.MethodGet && !p.Matches(body):
			return fmt.Errorf("part %d (%s): what it serves (%d bytes) does not match the part's SHA-256", n, u, len(body))
		}
	}
	return nil
}

// writeFiles writes each document under its part's name into dir. A file
// already there with the same content is kept (a rerun, or a part two
// snapshots share); one with other content is replaced.
func writeFiles(e env, dir string, docs []string, parts []snapfile.Part) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fresh, kept := 0, 0
	var total int64
	for i, f := range docs {
		dst := filepath.Join(dir, parts[i].Name())
		if have, err := os.ReadFile(dst); err == nil && parts[i].Matches(have) {
			kept++
			total += parts[i].Size
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if !parts[i].Matches(raw) {
			return fmt.Errorf("%s changed while publishing", f)
		}
		if err := writeFileAtomic(dst, raw, 0o644); err != nil {
			return err
		}
		fresh++
		total += parts[i].Size
	}
	fmt.Fprintf(e.stdout, "wrote %d files (%d bytes) to %s: %d new, %d already there; serve that directory at every -url\n", len(docs), total, dir, fresh, kept)
	return nil
}

// publishFallback puts the documents, retained, on the fallback topics
// and clears fallback topics numbered beyond them (a larger earlier
// snapshot's; all of them when docs is empty, for -no-fallback).
func publishFallback(e env, cl mqtt.Client, topics wire.Topics, docs []string, prog string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, err := retained(ctx, cl, snapfile.AllFallback(topics.Fleet), time.Second)
	if err != nil {
		return err
	}
	bar := newProgress(e.stderr, prog, "publishing fallback", "parts", int64(len(docs)))
	for i, f := range docs {
		raw, err := os.ReadFile(f)
		if err != nil {
			bar.finish()
			return err
		}
		topic := snapfile.FallbackTopic(topics.Fleet, i)
		if !bytes.Equal(old[topic], raw) {
			if err := waitToken(cl.Publish(topic, 1, true, raw)); err != nil {
				bar.finish()
				return fmt.Errorf("publish %s: %w", topic, err)
			}
		}
		bar.add(1)
	}
	bar.finish()
	cleared, err := clearFallback(cl, topics, old, len(docs))
	if err != nil {
		return err
	}
	switch {
	case len(docs) == 0:
		fmt.Fprintf(e.stdout, "no fallback: gates that reach no URL get no snapshot (cleared %d earlier fallback parts)\n", cleared)
	case cleared > 0:
		fmt.Fprintf(e.stdout, "fallback: %d parts → %s (cleared %d left from a larger snapshot)\n", len(docs), snapfile.AllFallback(topics.Fleet), cleared)
	default:
		fmt.Fprintf(e.stdout, "fallback: %d parts → %s\n", len(docs), snapfile.AllFallback(topics.Fleet))
	}
	return nil
}

// clearFallback clears the retained fallback topics among old numbered
// from on, and returns how many.
func clearFallback(cl mqtt.Client, topics wire.Topics, old map[string][]byte, from int) (int, error) {
	cleared := 0
	for topic := range old {
		if n, ok := snapfile.FallbackPart(topics.Fleet, topic); ok && n >= from {
			if err := waitToken(cl.Publish(topic, 1, true, []byte{})); err != nil {
				return cleared, fmt.Errorf("clear %s: %w", topic, err)
			}
			cleared++
		}
	}
	return cleared, nil
}

// clearManifest removes a retained snapshot manifest older than version,
// and its fallback parts, once a snapshot published over MQTT supersedes
// it.
func clearManifest(e env, cl mqtt.Client, rk verifier.RootKeys, topics wire.Topics, version uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := snapfile.Topic(topics.Fleet)
	got, err := retained(ctx, cl, topic, 500*time.Millisecond)
	if err != nil {
		return err
	}
	if len(got[topic]) == 0 {
		return nil
	}
	if m, err := snapfile.Parse(rk, got[topic]); err == nil && m.Version >= version {
		return nil
	}
	if err := waitToken(cl.Publish(topic, 1, true, []byte{})); err != nil {
		return fmt.Errorf("clear %s: %w", topic, err)
	}
	old, err := retained(ctx, cl, snapfile.AllFallback(topics.Fleet), time.Second)
	if err != nil {
		return err
	}
	n, err := clearFallback(cl, topics, old, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "cleared the retained snapshot manifest and %d fallback parts, superseded by %d\n", n, version)
	return nil
}
