//go:build !race

package lsm

const raceBuild = false
