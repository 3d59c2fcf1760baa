//go:build race

package forwarder_test

// raceEnabled: the race detector's shadow memory makes a process's RSS say
// little about its own use.
const raceEnabled = true
