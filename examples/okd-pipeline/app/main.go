// The article's GoHelloWorld app: the pipeline's README changes this line to show a cascade.
package main

import "fmt"

func main() {
	fmt.Println("Hello World!")
}
