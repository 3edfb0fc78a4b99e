module github.com/zenith-data/libzenith/tests/k8s-extender

go 1.26.0

require (
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	k8s.io/kube-scheduler v0.37.2 // indirect
)
