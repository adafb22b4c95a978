package camera

import (
	"bytes"
	"errors"
	"image"
	"io"
	"testing"
)

// testJPEGs returns n JPEGs of different patterns.
func testJPEGs(t testing.TB, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		g := testPattern(32+8*i, 24)
		out = append(out, encodeJPEG(t, g))
	}
	return out
}

// withThumbnail adds an APP1 segment holding a complete small JPEG after
// the SOI, like an EXIF thumbnail: its EOI must not end the frame.
func withThumbnail(t testing.TB, jpg []byte) []byte {
	thumb := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 8, 8)))
	n := len(thumb) + 2
	out := []byte{0xff, 0xd8, 0xff, 0xe1, byte(n >> 8), byte(n)}
	out = append(out, thumb...)
	return append(out, jpg[2:]...)
}

func readAll(t *testing.T, r *MJPEGReader) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	for {
		jpg, err := r.Next()
		if err != nil {
			return got, err
		}
		got = append(got, bytes.Clone(jpg))
	}
}

func TestMJPEGReader(t *testing.T) {
	jpgs := testJPEGs(t, 3)
	thumbed := withThumbnail(t, jpgs[2])
	var stream bytes.Buffer
	stream.WriteString("--frame\r\nContent-Type: image/jpeg\r\n\r\n")
	stream.Write(jpgs[0])
	stream.Write([]byte{0x00, 0xff, 0x12, 0xff, 0xff, 0xd9, 0xd8}) // garbage, no SOI
	stream.Write(jpgs[1][:len(jpgs[1])-20])                        // cut short in its scan by the next SOI
	stream.Write(jpgs[1])
	stream.WriteString("\r\n--frame\r\n\r\n")
	stream.Write(thumbed)
	stream.Write(jpgs[0][:100]) // cut short by the end of the stream

	r := NewMJPEGReader(&stream)
	got, err := readAll(t, r)
	if err != io.EOF {
		t.Fatalf("Next error = %v; want io.EOF", err)
	}
	want := [][]byte{jpgs[0], jpgs[1], thumbed}
	if len(got) != len(want) {
		t.Fatalf("Next returned %d JPEGs; want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("JPEG %d: %d bytes, differs from the %d written", i, len(got[i]), len(want[i]))
		}
		if _, err := JPEGToGray(nil, got[i]); err != nil {
			t.Errorf("JPEG %d does not decode: %v", i, err)
		}
	}
	if r.Skipped() == 0 {
		t.Error("Skipped() = 0; want the bytes between and of dropped JPEGs")
	}
}

func TestMJPEGReaderMalformed(t *testing.T) {
	jpg := testJPEGs(t, 1)[0]
	var stream bytes.Buffer
	stream.Write([]byte{0xff, 0xd8, 0x12, 0x34}) // no marker after SOI
	stream.Write(jpg)
	stream.Write([]byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01}) // segment length 1
	stream.Write(jpg)
	r := NewMJPEGReader(&stream)
	var good int
	var bad int
	for {
		got, err := r.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, ErrBadFrame) {
			bad++
			continue
		}
		if err != nil {
			t.Fatalf("Next error = %v", err)
		}
		if !bytes.Equal(got, jpg) {
			t.Errorf("Next = %d bytes; want the %d-byte JPEG", len(got), len(jpg))
		}
		good++
	}
	if good != 2 || bad != 2 {
		t.Errorf("Next gave %d JPEGs and %d ErrBadFrame; want 2 and 2", good, bad)
	}
}

func FuzzMJPEGReader(f *testing.F) {
	jpgs := testJPEGs(f, 2)
	f.Add(append(append([]byte("xx"), jpgs[0]...), jpgs[1]...))
	f.Add(jpgs[0][:len(jpgs[0])/3])
	f.Add([]byte{0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0xff, 0x00, 0xff, 0xd0, 0xff, 0xd9})
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd8, 0xff, 0xd9})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewMJPEGReader(bytes.NewReader(data))
		for range len(data) + 1 {
			jpg, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrBadFrame) {
					t.Fatalf("Next error = %v; want ErrBadFrame or io.EOF", err)
				}
				continue
			}
			if len(jpg) < 4 || jpg[0] != 0xff || jpg[1] != 0xd8 || jpg[len(jpg)-2] != 0xff || jpg[len(jpg)-1] != 0xd9 {
				t.Fatalf("Next = % x; want SOI ... EOI", jpg)
			}
			_, _ = JPEGToGray(nil, jpg)
		}
		t.Fatal("Next did not reach io.EOF")
	})
}
