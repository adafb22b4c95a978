package display

import "testing"

// BenchmarkPublish publishes to two connected pages that read as fast as
// they can.
func BenchmarkPublish(b *testing.B) {
	s, ts, _ := newTestServer(b, Config{})
	for range 2 {
		st, _ := openStream(b, ts.URL)
		go func() {
			for range st.events {
			}
		}()
	}
	ev := decisionEvent(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev.Seq = uint64(i + 1)
		s.Publish(ev)
	}
}
