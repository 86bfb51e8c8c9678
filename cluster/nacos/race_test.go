//go:build race

package nacos_test

// raceDetector is true when the tests are built with -race.
const raceDetector = true
