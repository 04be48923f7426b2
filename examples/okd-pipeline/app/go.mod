module example.com/gohelloworld

go 1.22
