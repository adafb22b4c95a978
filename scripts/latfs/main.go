// Command latfs mounts a pass-through of a directory (FUSE) that behaves
// like SD-card-class storage for the syscalls a store makes: every fsync
// or fdatasync first waits a flush latency drawn from a distribution
// (-flush, -tail-p, -tail), then runs the real fsync of the backing file.
//
// With -volatile, writes are kept in the mount's memory until a file's
// fsync (reads see them): killing latfs (SIGKILL) is then a power cut,
// which loses exactly what was written but not yet flushed. Mount it again
// on the same backing directory to see what a board finds after the cut.
//
// Usage: latfs [flags] BACKING-DIR MOUNTPOINT   (root; unmount with
// umount, or SIGTERM/SIGINT)
package main

import (
	"context"
	"flag"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

var (
	flush    = flag.Duration("flush", 8*time.Millisecond, "median flush latency; each flush takes it ±50%, uniformly")
	tailP    = flag.Float64("tail-p", 0.02, "probability that a flush takes -tail instead")
	tail     = flag.Duration("tail", 150*time.Millisecond, "flush latency of the tail (a card's garbage collection)")
	volatile = flag.Bool("volatile", false, "keep writes in memory until fsync: SIGKILL is a power cut")
)

func flushDelay() time.Duration {
	if rand.Float64() < *tailP {
		return *tail
	}
	return *flush/2 + time.Duration(rand.Int64N(int64(*flush)+1))
}

// extent is a write not yet flushed.
type extent struct {
	off  int64
	data []byte
}

// pending is one inode's unflushed writes, in order.
type pending struct {
	mu  sync.Mutex
	ext []extent
}

func (p *pending) end() int64 {
	var e int64
	for _, x := range p.ext {
		e = max(e, x.off+int64(len(x.data)))
	}
	return e
}

type node struct {
	fs.LoopbackNode
	p pending
}

var _ = (fs.NodeOpener)((*node)(nil))
var _ = (fs.NodeCreater)((*node)(nil))

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, e := n.LoopbackNode.Open(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	return &file{in: fh, p: &n.p}, fl, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	in, fh, fl, e := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	return in, &file{in: fh, p: &in.Operations().(*node).p}, fl, 0
}

// file forwards to the loopback file, delaying fsync and, with
// -volatile, holding writes back until it.
type file struct {
	in fs.FileHandle
	p  *pending
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if !*volatile {
		return f.in.(fs.FileReader).Read(ctx, dest, off)
	}
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	r, e := f.in.(fs.FileReader).Read(ctx, dest, off)
	if e != 0 {
		return nil, e
	}
	base, st := r.Bytes(dest)
	if st != fuse.OK {
		return nil, syscall.EIO
	}
	n := len(base)
	if end := f.p.end(); end > off {
		n = int(min(int64(len(dest)), max(int64(n), end-off)))
	}
	buf := make([]byte, n)
	copy(buf, base)
	for _, x := range f.p.ext {
		lo, hi := max(x.off, off), min(x.off+int64(len(x.data)), off+int64(n))
		if lo < hi {
			copy(buf[lo-off:hi-off], x.data[lo-x.off:hi-x.off])
		}
	}
	return fuse.ReadResultData(buf), 0
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !*volatile {
		return f.in.(fs.FileWriter).Write(ctx, data, off)
	}
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	f.p.ext = append(f.p.ext, extent{off, append([]byte(nil), data...)})
	return uint32(len(data)), 0
}

// writeBack writes the held writes to the backing file.
func (f *file) writeBack(ctx context.Context) syscall.Errno {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	for _, x := range f.p.ext {
		if _, e := f.in.(fs.FileWriter).Write(ctx, x.data, x.off); e != 0 {
			return e
		}
	}
	f.p.ext = nil
	return 0
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	time.Sleep(flushDelay())
	if e := f.writeBack(ctx); e != 0 {
		return e
	}
	return f.in.(fs.FileFsyncer).Fsync(ctx, flags)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if e := f.in.(fs.FileGetattrer).Getattr(ctx, out); e != 0 {
		return e
	}
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	out.Size = max(out.Size, uint64(f.p.end()))
	return 0
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok && *volatile {
		// A truncate is metadata: write back first so it orders after
		// the data, as a journal would.
		if e := f.writeBack(ctx); e != 0 {
			return e
		}
	}
	return f.in.(fs.FileSetattrer).Setattr(ctx, in, out)
}

func (f *file) Flush(ctx context.Context) syscall.Errno { return f.in.(fs.FileFlusher).Flush(ctx) }

func (f *file) Release(ctx context.Context) syscall.Errno {
	if *volatile {
		// Closing does not flush a disk's cache, but the file's
		// writes must not be forgotten while the mount lives.
		if e := f.writeBack(ctx); e != 0 {
			return e
		}
	}
	return f.in.(fs.FileReleaser).Release(ctx)
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return f.in.(fs.FileAllocater).Allocate(ctx, off, size, mode)
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.in.(fs.FileLseeker).Lseek(ctx, off, whence)
}

func main() {
	flag.Parse()
	if flag.NArg() != 2 {
		log.Fatal("usage: latfs [flags] BACKING-DIR MOUNTPOINT")
	}
	src, mnt := flag.Arg(0), flag.Arg(1)
	var st syscall.Stat_t
	if err := syscall.Stat(src, &st); err != nil {
		log.Fatal(err)
	}
	root := &fs.LoopbackRoot{Path: src, Dev: uint64(st.Dev)}
	root.NewNode = func(r *fs.LoopbackRoot, parent *fs.Inode, name string, st *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}}
	}
	rootNode := root.NewNode(root, nil, "", &st)
	root.RootNode = rootNode
	srv, err := fs.Mount(mnt, rootNode, &fs.Options{MountOptions: fuse.MountOptions{DirectMount: true, FsName: "latfs", AllowOther: true}})
	if err != nil {
		log.Fatal(err)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() { <-c; srv.Unmount() }()
	srv.Wait()
}
