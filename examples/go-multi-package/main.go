// Three packages of one module: main -> greeting -> internal/shout, so a change to one of them
// shows what an incremental build recompiles.
package main

import (
	"fmt"

	"example.com/multi/greeting"
)

func main() {
	fmt.Println(greeting.Hello("multi"))
}
