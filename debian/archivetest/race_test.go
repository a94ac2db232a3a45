//go:build race

package archivetest

// raceEnabled: the race detector slows compression tenfold, so timing
// limits do not apply.
const raceEnabled = true
