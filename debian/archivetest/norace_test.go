//go:build !race

package archivetest

const raceEnabled = false
