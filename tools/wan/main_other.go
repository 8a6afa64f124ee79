//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wan: needs Linux (network namespaces, TUN devices)")
	os.Exit(1)
}
