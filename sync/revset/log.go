package revset

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The delta log: a 16-byte header, then one frame per applied delta.
//
//	header  0..8 magic "WKREVLOG", 8..16 key id
//	frame   0..4 magic "WKDL", 4..8 payload length, 8..12 CRC-32C of payload
//	payload 0..8 version, 8..16 base, 16..24 issued-at (unix s),
//	        24..28 record count, then count records of RecordSize bytes,
//	        sorted and combined
//
// All integers are big-endian. A frame is appended and fsynced before the
// delta is visible; a torn last frame is cut off by Open.
const (
	logMagic       = "WKREVLOG"
	logHeaderSize  = 16
	frameMagic     = "WKDL"
	frameHeadSize  = 12
	framePayloadHd = 28
	// maxFrameRecords bounds one frame when reading (about 1 GiB).
	maxFrameRecords = 1 << 26
)

type frame struct {
	version, base uint64
	issuedAt      int64
	recs          []Record
}

func encodeFrame(f *frame) []byte {
	n := framePayloadHd + len(f.recs)*RecordSize
	b := make([]byte, frameHeadSize+n)
	copy(b, frameMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	p := b[frameHeadSize:]
	binary.BigEndian.PutUint64(p, f.version)
	binary.BigEndian.PutUint64(p[8:], f.base)
	binary.BigEndian.PutUint64(p[16:], uint64(f.issuedAt))
	binary.BigEndian.PutUint32(p[24:], uint32(len(f.recs)))
	for i := range f.recs {
		f.recs[i].put(p[framePayloadHd+i*RecordSize:])
	}
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(p, castagnoli))
	return b
}

// readFrame reads the next frame; io.EOF at a clean end, errTorn for a
// partial or damaged frame.
var errTorn = errors.New("torn or damaged log frame")

func readFrame(r io.Reader) (*frame, int64, error) {
	var hd [frameHeadSize]byte
	if _, err := io.ReadFull(r, hd[:]); err != nil {
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		return nil, 0, errTorn
	}
	n := binary.BigEndian.Uint32(hd[4:])
	if string(hd[:4]) != frameMagic || n < framePayloadHd || (n-framePayloadHd)%RecordSize != 0 ||
		(n-framePayloadHd)/RecordSize > maxFrameRecords {
		return nil, 0, errTorn
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, 0, errTorn
	}
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(hd[8:]) {
		return nil, 0, errTorn
	}
	count := binary.BigEndian.Uint32(p[24:])
	if uint64(count)*RecordSize != uint64(n-framePayloadHd) {
		return nil, 0, errTorn
	}
	f := &frame{
		version:  binary.BigEndian.Uint64(p),
		base:     binary.BigEndian.Uint64(p[8:]),
		issuedAt: int64(binary.BigEndian.Uint64(p[16:])),
		recs:     make([]Record, count),
	}
	for i := range f.recs {
		f.recs[i] = getRecord(p[framePayloadHd+i*RecordSize:])
		if !f.recs[i].valid() || (i > 0 && compareKK(&f.recs[i-1], &f.recs[i]) >= 0) {
			return nil, 0, errTorn
		}
	}
	return f, int64(frameHeadSize) + int64(n), nil
}

// writeLog atomically replaces the log at path with a header and the
// given frames, and returns it opened for appending.
func writeLog(path string, keyID [8]byte, frames ...*frame) (*os.File, int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, 0, err
	}
	w := bufio.NewWriter(tmp)
	w.WriteString(logMagic)
	w.Write(keyID[:])
	size := int64(logHeaderSize)
	for _, f := range frames {
		b := encodeFrame(f)
		w.Write(b)
		size += int64(len(b))
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, 0, fmt.Errorf("revset: write log: %w", err)
	}
	lf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, 0, err
	}
	return lf, size, nil
}

// readLog reads the frames of the log at path. It returns the frames
// read and the offset of the end of the last good frame; torn reports
// whether anything after that offset was cut.
func readLog(path string, keyID [8]byte) (frames []*frame, good int64, torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hd [logHeaderSize]byte
	if _, err := io.ReadFull(r, hd[:]); err != nil || string(hd[:8]) != logMagic {
		return nil, 0, false, fmt.Errorf("%w: log header", ErrCorrupt)
	}
	if [8]byte(hd[8:]) != keyID {
		return nil, 0, false, ErrKeyMismatch
	}
	good = logHeaderSize
	for {
		fr, n, err := readFrame(r)
		if err == io.EOF {
			return frames, good, false, nil
		}
		if err != nil {
			return frames, good, true, nil
		}
		frames = append(frames, fr)
		good += n
	}
}
