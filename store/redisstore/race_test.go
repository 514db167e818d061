//go:build race

package redisstore

// raceEnabled is true under -race, which adds allocations of its own:
// allocation counts are asserted without it only.
const raceEnabled = true
