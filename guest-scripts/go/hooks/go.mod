module ws2i.dev/builders/go

go 1.24
