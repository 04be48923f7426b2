// A package with an amd64 assembly function (and a Go fallback elsewhere): the builder runs
// asm.wasm and pack.wasm for it, as the go command runs asm and pack.
package main

import (
	"fmt"

	"example.com/asm/add"
)

func main() { fmt.Println("2+3 =", add.Add(2, 3)) }
