module example.com/vendored

go 1.22

require github.com/ws2i-example/banner v1.2.0
