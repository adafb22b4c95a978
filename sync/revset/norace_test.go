//go:build !race

package revset

const raceEnabled = false
