//go:build !race

package middleware_test

// raceEnabled is true under -race, which adds allocations of its own:
// allocation counts are asserted without it only.
const raceEnabled = false
