//go:build race

package revset

const raceEnabled = true
