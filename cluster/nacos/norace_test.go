//go:build !race

package nacos_test

const raceDetector = false
