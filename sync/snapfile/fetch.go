package snapfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wicket/internal/clock"
	"wicket/sync/store"
	"wicket/sync/trust"
	"wicket/verifier"
)

// Defaults of Config, with their reasons.
const (
	// DefaultJitter spreads a fleet's downloads of one manifest over ten
	// minutes: 5,000 gates fetching a 300 MB snapshot at once would
	// saturate any server a site runs; a snapshot is not urgent (deltas
	// carry what is).
	DefaultJitter = 10 * time.Minute
	// DefaultAttempts is the tries of one URL for one part that bring
	// no byte before the next URL is tried.
	DefaultAttempts = 3
	// DefaultRetryMin and DefaultRetryMax bound the backoff between them.
	DefaultRetryMin = 2 * time.Second
	DefaultRetryMax = time.Minute
	// DefaultFallbackWait bounds the wait for the broker's parts once no
	// URL delivered: retained parts arrive in seconds.
	DefaultFallbackWait = 5 * time.Minute
	// maxResumes bounds the tries of one part at one URL that did bring
	// bytes: a link that is cut every few MB still finishes a 4 MB part,
	// a server that sends one byte per connection does not hold the gate
	// forever.
	maxResumes = 256
	// headerTimeout bounds the wait for a server's response headers.
	headerTimeout = 30 * time.Second
)

// ManifestDoc is the store's name of the last manifest the gate took.
const ManifestDoc = "snapshot-manifest"

// Errors a Fetcher reports.
var (
	// ErrReplayed: a manifest older than the last one the gate took.
	ErrReplayed = errors.New("replayed snapshot manifest")
	// ErrHash: a file does not match the manifest's SHA-256.
	ErrHash = errors.New("file does not match the manifest's SHA-256")
	// ErrOversize: a server sends more than the manifest's size.
	ErrOversize = errors.New("file larger than the manifest says")
	// ErrSize: a server's file is shorter than the manifest's size.
	ErrSize = errors.New("file shorter than the manifest says")
)

// Config configures a Fetcher. The zero value of each field but Roots
// and Dir means its default.
type Config struct {
	// Roots verify manifests (the gate's pinned root keys).
	Roots verifier.RootKeys
	// Dir keeps part files while they download, so a restart resumes
	// them too. Created if missing; a part's file is removed once the
	// Applier took it.
	Dir string
	// Jitter is the longest random wait before a download starts
	// (DefaultJitter); negative means none.
	Jitter time.Duration
	// Attempts, RetryMin, RetryMax: see DefaultAttempts.
	Attempts           int
	RetryMin, RetryMax time.Duration
	// FallbackWait: see DefaultFallbackWait.
	FallbackWait time.Duration
	// Fallback takes the parts from the broker when no URL delivers;
	// nil means there is no such way and the fetch fails.
	Fallback Fallback
	// HTTP is the client for the URLs; nil means one with
	// headerTimeout and the environment's proxy.
	HTTP *http.Client
	// Clock drives the jitter, backoff and fallback wait; nil: real.
	Clock clock.Clock
	// Rand returns a value in [0, n) for the jitter and backoff; nil:
	// math/rand/v2.
	Rand func(n int64) int64
}

// Fallback delivers parts of the announced snapshot from the broker.
type Fallback interface {
	// Parts calls deliver with each message on the fallback topics of
	// parts (a part may come more than once) until deliver returns true,
	// ctx ends (then it returns ctx.Err()) or the broker fails.
	Parts(ctx context.Context, parts []int, deliver func(part int, raw []byte) bool) error
}

// Phase is where a Fetcher is with the newest manifest.
type Phase int

const (
	Idle        Phase = iota // no manifest taken
	Waiting                  // the jitter before the download
	Downloading              // over HTTP(S)
	FromBroker               // no URL delivered: parts from the broker
	Done                     // the snapshot is installed
	Failed                   // given up; the gate keeps its data; Reason says why
)

func (p Phase) String() string {
	return [...]string{"idle", "waiting", "downloading", "from broker", "done", "failed"}[p]
}

// State is what the gate's status says about snapshot files.
type State struct {
	Version     uint64 // of the manifest taken last
	Phase       Phase
	Parts, Have int
	// HTTPBytes are the bytes received over HTTP(S) for Version.
	HTTPBytes int64
	// BrokerParts are the parts taken from the broker for Version.
	BrokerParts int
	// Reason says why the fetch fell back to the broker or failed.
	Reason string
	// Refused counts manifests refused since start; LastRefusal says
	// why the last was.
	Refused     uint64
	LastRefusal string
}

// String is the one-line form for the gate's status.
func (s State) String() string {
	if s.Phase == Idle && s.Refused == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d: %s %d/%d", s.Version, s.Phase, s.Have, s.Parts)
	if s.BrokerParts > 0 {
		fmt.Fprintf(&b, " (%d from the broker)", s.BrokerParts)
	}
	if s.Reason != "" {
		b.WriteString("; " + s.Reason)
	}
	if s.LastRefusal != "" {
		fmt.Fprintf(&b, "; %d refused, last: %s", s.Refused, s.LastRefusal)
	}
	return b.String()
}

// Fetcher takes signed manifests (Offer) and fetches what they announce
// (Run). Its methods are safe for concurrent use.
type Fetcher struct {
	cfg    Config
	clk    clock.Clock
	st     *store.Store
	tr     *trust.Applier
	log    *slog.Logger
	offers chan *Manifest // the newest manifest taken, not yet fetched
	latest atomic.Uint64  // its version: a fetch of an older one stops

	// OnChange, if set, is called after the state changed in a way the
	// gate's status shows: a fallback, a failure, a refused manifest,
	// a snapshot installed. Set it before Run.
	OnChange func()

	mu    sync.Mutex
	take  sync.Mutex // Offer's check-store-enqueue against Run's resume of the stored manifest
	state State
}

// New returns a Fetcher that installs through tr into st.
func New(cfg Config, st *store.Store, tr *trust.Applier, log *slog.Logger) (*Fetcher, error) {
	if len(cfg.Roots) == 0 {
		return nil, errors.New("snapfile: no root keys")
	}
	if cfg.Dir == "" {
		return nil, errors.New("snapfile: no download directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapfile: %w", err)
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = DefaultJitter
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.FallbackWait <= 0 {
		cfg.FallbackWait = DefaultFallbackWait
	}
	if cfg.HTTP == nil {
		tr := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: headerTimeout}).DialContext,
			TLSHandshakeTimeout:   headerTimeout,
			ResponseHeaderTimeout: headerTimeout,
			// A part is a signed CBOR document: compressing it gains
			// nothing, and a compressed body would break Range resume.
			DisableCompression: true,
		}
		cfg.HTTP = &http.Client{Transport: tr}
	}
	return &Fetcher{cfg: cfg, clk: clock.OrReal(cfg.Clock), st: st, tr: tr, log: log.With("component", "snapfile"), offers: make(chan *Manifest, 1)}, nil
}

// State returns a copy of the state.
func (f *Fetcher) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *Fetcher) update(fn func(*State)) {
	f.mu.Lock()
	fn(&f.state)
	f.mu.Unlock()
}

// Offer takes a signed manifest from the broker. It never blocks on the
// network: it verifies the signature, refuses a replay, stores the
// manifest and queues it for Run. It reports whether the manifest was
// taken; a manifest the gate already has (the retained one, sent again
// on a resubscription) is not, without an error. A refused manifest
// changes nothing and its error says why.
func (f *Fetcher) Offer(raw []byte) (bool, error) {
	m, err := Parse(f.cfg.Roots, raw)
	if err != nil {
		return false, f.refuse(0, err)
	}
	f.take.Lock()
	defer f.take.Unlock()
	stored, sv, err := f.st.TrustDoc(ManifestDoc)
	if err != nil {
		return false, fmt.Errorf("snapfile: %w", err)
	}
	installed := f.st.Info().Version
	switch {
	case m.Version == sv && string(stored) == string(raw):
		// The retained manifest again: fetched, or being fetched,
		// unless the last try failed.
		if installed >= m.Version || (f.latest.Load() >= m.Version && f.State().Phase != Failed) {
			return false, nil
		}
	case m.Version <= sv:
		return false, f.refuse(m.Version, fmt.Errorf("%w: version %d, the gate took manifest %d already", ErrReplayed, m.Version, sv))
	case m.Version <= installed:
		f.log.Debug("manifest not newer than the installed snapshot", "version", m.Version, "installed", installed)
		return false, nil
	default:
		if err := f.st.PutTrustDoc(ManifestDoc, m.Version, raw); err != nil {
			if errors.Is(err, store.ErrStaleVersion) {
				return false, f.refuse(m.Version, fmt.Errorf("%w: %w", ErrReplayed, err))
			}
			return false, fmt.Errorf("snapfile: %w", err)
		}
	}
	f.log.Info("snapshot manifest taken", "version", m.Version, "parts", len(m.Parts), "bytes", m.Total(), "urls", len(m.URLs))
	f.enqueue(m)
	return true, nil
}

// enqueue makes m the next manifest Run fetches, replacing one waiting.
func (f *Fetcher) enqueue(m *Manifest) {
	f.latest.Store(m.Version)
	select {
	case <-f.offers:
	default:
	}
	f.offers <- m
	f.update(func(s *State) {
		*s = State{Version: m.Version, Phase: Waiting, Parts: len(m.Parts), Refused: s.Refused, LastRefusal: s.LastRefusal}
	})
}

func (f *Fetcher) refuse(version uint64, err error) error {
	why := err.Error()
	if version != 0 {
		why = fmt.Sprintf("manifest %d: %s", version, why)
	}
	f.update(func(s *State) { s.Refused++; s.LastRefusal = why })
	f.changed()
	f.log.Warn("snapshot manifest refused; the gate keeps its data", "version", version, "err", err)
	return fmt.Errorf("snapshot manifest: %w", err)
}

// Run fetches manifests as Offer takes them, and at start the stored one
// if its snapshot is not installed yet (a restart mid-download), until
// ctx ends.
func (f *Fetcher) Run(ctx context.Context) error {
	if err := f.resume(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-f.offers:
			f.fetch(ctx, m)
		}
	}
}

// resume queues the stored manifest if its snapshot is not installed and
// no Offer has queued it (or a newer one) already: under take, so a
// manifest that arrives from the broker while the gate starts is fetched
// once.
func (f *Fetcher) resume() error {
	f.take.Lock()
	defer f.take.Unlock()
	raw, v, err := f.st.TrustDoc(ManifestDoc)
	if err != nil {
		return fmt.Errorf("snapfile: %w", err)
	}
	if raw != nil && v > f.st.Info().Version && f.latest.Load() < v {
		if m, err := Parse(f.cfg.Roots, raw); err == nil {
			f.log.Info("resuming the snapshot of the stored manifest", "version", m.Version)
			f.enqueue(m)
		}
	}
	return nil
}

// superseded reports whether a newer manifest was taken since m.
func (f *Fetcher) superseded(m *Manifest) bool { return f.latest.Load() > m.Version }

// fetch downloads and installs the snapshot of m, from the broker for
// the parts no URL delivers.
func (f *Fetcher) fetch(ctx context.Context, m *Manifest) {
	if f.cfg.Jitter > 0 {
		r := f.cfg.Rand
		if r == nil {
			r = rand.Int64N
		}
		wait := time.Duration(r(int64(f.cfg.Jitter)))
		f.log.Info("snapshot download starts after a random wait", "version", m.Version, "in", wait.Round(time.Second))
		if !clock.Sleep(ctx, f.clk, wait) {
			return
		}
	}
	f.update(func(s *State) { s.Phase = Downloading })
	f.prune(m)
	start := f.clk.Now()
	for i := range m.Parts {
		if f.superseded(m) {
			f.log.Info("snapshot download abandoned for a newer manifest", "version", m.Version)
			return
		}
		raw, src, err := f.fromURLs(ctx, m, i)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.fromBroker(ctx, m, i, fmt.Sprintf("no URL delivered part %d: %v", i, err))
			return
		}
		if err := f.hand(m, i, raw, src); err != nil {
			f.fail(m, err.Error())
			return
		}
		os.Remove(filepath.Join(f.cfg.Dir, m.Parts[i].Name()))
	}
	f.finish(m, start)
}

// prune removes files of earlier manifests (downloads they left
// unfinished) from the download directory.
func (f *Fetcher) prune(m *Manifest) {
	keep := make(map[string]bool, len(m.Parts))
	for _, p := range m.Parts {
		keep[p.Name()] = true
	}
	des, err := os.ReadDir(f.cfg.Dir)
	if err != nil {
		f.log.Warn("read the download directory", "err", err)
		return
	}
	for _, de := range des {
		if !keep[de.Name()] {
			os.Remove(filepath.Join(f.cfg.Dir, de.Name()))
		}
	}
}

// fromURLs downloads part n from each URL in turn until one delivers it
// whole and matching the manifest.
func (f *Fetcher) fromURLs(ctx context.Context, m *Manifest, n int) ([]byte, string, error) {
	p := m.Parts[n]
	path := filepath.Join(f.cfg.Dir, p.Name())
	if st, err := os.Stat(path); err == nil && st.Size() >= p.Size {
		// Whole from an earlier run: used if it matches, else fetched
		// again, so every URL gets a fresh try.
		if raw, err := os.ReadFile(path); err == nil && p.Matches(raw) {
			return raw, "the download directory", nil
		}
		os.Remove(path)
	}
	var errs []string
	for u := range m.URLs {
		url := m.URL(u, n)
		err := f.download(ctx, url, path, p)
		if err == nil {
			raw, rerr := os.ReadFile(path)
			if rerr == nil && p.Matches(raw) {
				return raw, url, nil
			}
			os.Remove(path)
			err = ErrHash
			if rerr != nil {
				err = rerr
			}
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		f.log.Warn("snapshot part not delivered", "version", m.Version, "part", n, "url", url, "err", err)
		errs = append(errs, url+": "+err.Error())
	}
	return nil, "", errors.New(strings.Join(errs, "; "))
}

// fatalErr: retrying the same URL cannot help.
type fatalErr struct{ error }

func (e fatalErr) Unwrap() error { return e.error }

// download brings the file at url to path, resuming what path holds,
// retrying with backoff: DefaultAttempts tries that bring no byte, up to
// maxResumes that do.
func (f *Fetcher) download(ctx context.Context, url, path string, p Part) error {
	bo := clock.Backoff{Min: f.cfg.RetryMin, Max: f.cfg.RetryMax, Rand: f.cfg.Rand}
	idle, resumes := 0, 0
	for {
		n, err := f.get(ctx, url, path, p)
		var fe fatalErr
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &fe):
			return err
		case n > 0:
			resumes++
			idle = 0
			bo.Reset()
		default:
			idle++
		}
		if idle >= f.cfg.Attempts || resumes >= maxResumes {
			return err
		}
		wait := bo.Next()
		f.log.Info("snapshot part download interrupted; retrying", "url", url, "got", n, "in", wait.Round(time.Millisecond), "err", err)
		if !clock.Sleep(ctx, f.clk, wait) {
			return ctx.Err()
		}
	}
}

// get makes one request for what path lacks of the part, appends the
// bytes received, and returns how many.
func (f *Fetcher) get(ctx context.Context, url, path string, p Part) (int64, error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fatalErr{err}
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return 0, fatalErr{err}
	}
	have := st.Size()
	if have > p.Size {
		have = 0
	}
	if have == p.Size {
		return 0, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fatalErr{err}
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := f.cfg.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		from, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || from != have {
			fh.Truncate(0)
			return 0, fmt.Errorf("Content-Range %q for bytes from %d of %d", resp.Header.Get("Content-Range"), have, p.Size)
		}
		if total >= 0 && total < p.Size {
			return 0, fatalErr{fmt.Errorf("%w: %d bytes, the manifest says %d", ErrSize, total, p.Size)}
		}
	case http.StatusOK:
		if have > 0 {
			f.log.Info("server ignored the range request; downloading the part from its start", "url", url)
		}
		have = 0
		if resp.ContentLength >= 0 && resp.ContentLength < p.Size {
			return 0, fatalErr{fmt.Errorf("%w: %d bytes, the manifest says %d", ErrSize, resp.ContentLength, p.Size)}
		}
	case http.StatusNotFound, http.StatusGone, http.StatusForbidden:
		return 0, fatalErr{fmt.Errorf("HTTP %s", resp.Status)}
	default:
		if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			fh.Truncate(0)
		}
		return 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	left := p.Size - have
	if resp.ContentLength > left {
		return 0, fatalErr{fmt.Errorf("%w: the server sends %d bytes from byte %d, the manifest says %d in all", ErrOversize, resp.ContentLength, have, p.Size)}
	}
	if err := fh.Truncate(have); err != nil {
		return 0, fatalErr{err}
	}
	if _, err := fh.Seek(have, io.SeekStart); err != nil {
		return 0, fatalErr{err}
	}
	n, err := io.Copy(fh, io.LimitReader(resp.Body, left+1))
	f.update(func(s *State) { s.HTTPBytes += n })
	switch {
	case n > left:
		fh.Truncate(0)
		return n, fatalErr{fmt.Errorf("%w: more than %d bytes", ErrOversize, p.Size)}
	case err != nil:
		return n, fmt.Errorf("cut at byte %d of %d: %w", have+n, p.Size, err)
	case n < left:
		return n, fmt.Errorf("cut at byte %d of %d", have+n, p.Size)
	}
	return n, nil
}

// contentRange parses "bytes FROM-TO/TOTAL" (TOTAL may be "*": -1).
func contentRange(h string) (from, total int64, ok bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, false
	}
	from, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if tot == "*" {
		return from, -1, true
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return from, total, true
}

// hand gives part n to the Applier, which checks its signature and
// version and adds it to the snapshot it assembles.
func (f *Fetcher) hand(m *Manifest, n int, raw []byte, src string) error {
	if !m.Parts[n].Matches(raw) {
		return fmt.Errorf("part %d from %s: %w", n, src, ErrHash)
	}
	res, err := f.tr.Batch(raw, "snapshot file "+src)
	if res == trust.Refused {
		return fmt.Errorf("part %d from %s refused: %v", n, src, err)
	}
	f.update(func(s *State) { s.Have++ })
	return nil
}

// fromBroker takes parts from..end from the Fallback after no URL
// delivered part from.
func (f *Fetcher) fromBroker(ctx context.Context, m *Manifest, from int, why string) {
	if f.cfg.Fallback == nil {
		f.fail(m, why+"; no broker fallback")
		return
	}
	f.log.Warn("no URL delivers the snapshot; taking its parts from the broker", "version", m.Version, "from_part", from, "reason", why)
	f.update(func(s *State) { s.Phase, s.Reason = FromBroker, why })
	f.changed()
	need := map[int]bool{}
	parts := make([]int, 0, len(m.Parts)-from)
	for i := from; i < len(m.Parts); i++ {
		need[i] = true
		parts = append(parts, i)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	limit := f.clk.AfterFunc(f.cfg.FallbackWait, cancel)
	defer limit.Stop()
	var handErr error
	mismatched := 0
	start := f.clk.Now()
	err := f.cfg.Fallback.Parts(wctx, parts, func(n int, raw []byte) bool {
		if !need[n] || f.superseded(m) {
			return f.superseded(m)
		}
		if !m.Parts[n].Matches(raw) {
			mismatched++ // an older snapshot's part still retained, or a forgery
			return false
		}
		if handErr = f.hand(m, n, raw, "broker"); handErr != nil {
			return true
		}
		delete(need, n)
		f.update(func(s *State) { s.BrokerParts++ })
		return len(need) == 0
	})
	switch {
	case f.superseded(m) || (ctx.Err() != nil && handErr == nil):
		return
	case handErr != nil:
		f.fail(m, why+"; "+handErr.Error())
	case len(need) > 0:
		detail := fmt.Sprintf("the broker delivered %d of %d parts", len(parts)-len(need), len(parts))
		if mismatched > 0 {
			detail += fmt.Sprintf(" (%d did not match the manifest)", mismatched)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			detail += ": " + err.Error()
		}
		f.fail(m, why+"; "+detail)
	default:
		f.finish(m, start)
	}
}

// finish checks that the Applier put the snapshot in force.
func (f *Fetcher) finish(m *Manifest, start time.Time) {
	if installed := f.st.Info().Version; installed < m.Version {
		f.fail(m, fmt.Sprintf("every part handed over, but the installed version is %d (trust: %s)", installed, f.tr.Stats().LastRefusal))
		return
	}
	s := f.State()
	f.update(func(s *State) { s.Phase = Done })
	f.changed()
	f.log.Info("snapshot from files installed", "version", m.Version, "parts", len(m.Parts), "http_bytes", s.HTTPBytes, "from_broker", s.BrokerParts, "took", f.clk.Since(start).Round(time.Millisecond))
}

// fail gives up on m: the gate keeps the data it has.
func (f *Fetcher) fail(m *Manifest, why string) {
	f.update(func(s *State) { s.Phase, s.Reason = Failed, why })
	f.log.Error("snapshot not installed; the gate keeps its data", "version", m.Version, "reason", why)
	f.changed()
}

func (f *Fetcher) changed() {
	if f.OnChange != nil {
		f.OnChange()
	}
}
