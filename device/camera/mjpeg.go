package camera

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MJPEGReader splits a stream of concatenated JPEGs (an MJPEG file, or
// the body of a multipart HTTP camera stream) into single JPEGs. It walks
// each JPEG's marker segments rather than searching for the end marker, so
// an embedded thumbnail does not end a frame early; bytes between JPEGs
// (multipart headers, garbage) are skipped, and a JPEG cut short by the
// start of the next one is dropped.
type MJPEGReader struct {
	r   *bufio.Reader
	buf []byte
	// skipped counts bytes skipped between JPEGs and in dropped ones.
	skipped int64
}

// NewMJPEGReader returns a reader of the JPEGs in r.
func NewMJPEGReader(r io.Reader) *MJPEGReader {
	return &MJPEGReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Skipped returns how many bytes were skipped so far: outside JPEGs, and
// in JPEGs that were cut short or too large.
func (m *MJPEGReader) Skipped() int64 { return m.skipped }

// errRestart: a new SOI began inside a JPEG; the JPEG so far is dropped.
var errRestart = errors.New("jpeg restarted")

// Next returns the next complete JPEG, from its SOI to its EOI. The slice
// is reused by the next call. It returns io.EOF at the end of the stream
// (including one that ends inside a JPEG, which is counted as skipped),
// ErrBadFrame for a JPEG larger than MaxJPEGSize or with a malformed
// segment (the next call resumes at the next SOI), and any read error of
// the underlying reader. It never panics.
func (m *MJPEGReader) Next() ([]byte, error) {
	if err := m.findSOI(); err != nil {
		return nil, err
	}
	for {
		err := m.readJPEG()
		if err == nil {
			return m.buf, nil
		}
		m.skipped += int64(len(m.buf))
		if !errors.Is(err, errRestart) {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, io.EOF
			}
			return nil, err
		}
		m.skipped -= 2 // the new SOI is part of the next JPEG
	}
}

// findSOI skips to just after the next FF D8.
func (m *MJPEGReader) findSOI() error {
	prevFF := false
	for {
		c, err := m.r.ReadByte()
		if err != nil {
			return err
		}
		if prevFF && c == 0xd8 {
			m.skipped--
			return nil
		}
		m.skipped++
		prevFF = c == 0xff
	}
}

// readJPEG reads one JPEG whose SOI was just read into m.buf.
func (m *MJPEGReader) readJPEG() error {
	m.buf = append(m.buf[:0], 0xff, 0xd8)
	marker, err := m.nextMarker()
	for {
		if err != nil {
			return err
		}
		if marker == 0xd9 {
			return nil
		}
		if err := m.segment(marker); err != nil {
			return err
		}
		if marker == 0xda {
			marker, err = m.entropy()
		} else {
			marker, err = m.nextMarker()
		}
	}
}

// nextMarker reads FF (fill FFs) and a marker byte, appending them.
func (m *MJPEGReader) nextMarker() (byte, error) {
	c, err := m.readByte()
	if err != nil {
		return 0, err
	}
	if c != 0xff {
		return 0, fmt.Errorf("%w: mjpeg: byte %#02x where a marker should be", ErrBadFrame, c)
	}
	for {
		c, err = m.readByte()
		if err != nil {
			return 0, err
		}
		if c != 0xff {
			return c, m.checkMarker(c)
		}
	}
}

func (m *MJPEGReader) checkMarker(c byte) error {
	switch c {
	case 0xd8:
		return errRestart
	case 0x00:
		return fmt.Errorf("%w: mjpeg: stuffed byte outside a scan", ErrBadFrame)
	}
	return nil
}

// segment reads the length and body of the segment of marker, if it has
// one; EOI, RSTn and TEM have none.
func (m *MJPEGReader) segment(marker byte) error {
	if marker == 0xd9 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7) {
		return nil
	}
	hi, err := m.readByte()
	if err != nil {
		return err
	}
	lo, err := m.readByte()
	if err != nil {
		return err
	}
	n := int(hi)<<8 | int(lo)
	if n < 2 {
		return fmt.Errorf("%w: mjpeg: segment %#02x of length %d", ErrBadFrame, marker, n)
	}
	for range n - 2 {
		if _, err := m.readByte(); err != nil {
			return err
		}
	}
	return nil
}

// entropy reads entropy-coded data up to the next marker other than a
// stuffed zero or a restart marker, and returns that marker.
func (m *MJPEGReader) entropy() (byte, error) {
	for {
		c, err := m.readByte()
		if err != nil {
			return 0, err
		}
		if c != 0xff {
			continue
		}
		for c == 0xff {
			if c, err = m.readByte(); err != nil {
				return 0, err
			}
		}
		if c == 0x00 || (c >= 0xd0 && c <= 0xd7) {
			continue
		}
		return c, m.checkMarker(c)
	}
}

// readByte reads one byte into m.buf, bounding its size. A stream that
// ends inside a JPEG is io.ErrUnexpectedEOF.
func (m *MJPEGReader) readByte() (byte, error) {
	c, err := m.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if len(m.buf) >= MaxJPEGSize {
		return 0, fmt.Errorf("%w: mjpeg: jpeg over %d bytes", ErrBadFrame, MaxJPEGSize)
	}
	m.buf = append(m.buf, c)
	return c, nil
}
