// Uses a third-party module from vendor/ (as `go mod vendor` leaves it): ws2i builds offline.
package main

import (
	"fmt"

	"github.com/ws2i-example/banner"
)

func main() {
	fmt.Println(banner.Frame("Hello from a vendored module!"))
}
