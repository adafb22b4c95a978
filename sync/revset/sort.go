package revset

import "slices"

// sortRecords sorts records by (key, kind, seq). The records must come in
// seq order: a stable LSD radix sort on the key (four 16-bit digits)
// keeps that order among equal keys, and the rare runs of equal keys are
// then sorted by kind. tmp is scratch space, reused when large enough; the
// (possibly new) scratch slice is returned.
func sortRecords(rs, tmp []Record) []Record {
	if len(rs) < 1<<12 {
		slices.SortFunc(rs, compareSeq)
		return tmp
	}
	if cap(tmp) < len(rs) {
		tmp = make([]Record, len(rs))
	}
	tmp = tmp[:len(rs)]
	count := make([]int, 1<<16)
	src, dst := rs, tmp
	for shift := uint(0); shift < 64; shift += 16 {
		clear(count)
		for i := range src {
			count[(src[i].Key>>shift)&0xffff]++
		}
		pos := 0
		for d, c := range count {
			count[d] = pos
			pos += c
		}
		for i := range src {
			d := (src[i].Key >> shift) & 0xffff
			dst[count[d]] = src[i]
			count[d]++
		}
		src, dst = dst, src
	}
	// Four passes: the result is back in rs.
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].Key == rs[i].Key {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(rs[i:j], compareSeq)
		}
		i = j
	}
	return tmp
}
