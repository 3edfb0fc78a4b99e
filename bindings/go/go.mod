module github.com/zenith-data/libzenith/bindings/go

go 1.22
